// Package browser drives the door-scanner page (/scan) in Debian's headless Chromium with
// Playwright (playwright-core from npm, never its own browser download), against a whole
// platform started the way a user runs it (test/platform). The camera is Chromium's fake
// capture device playing a Y4M file made from the ticket's own QR PNG, so the page decodes a
// real QR code from a real video stream.
//
// It needs node and Chromium (SBOR_CHROMIUM, default /usr/bin/chromium); hack/browser-deps.sh
// installs both. Without them the test skips, unless SBOR_REQUIRE_BROWSER=1 (CI), which
// makes their absence a failure.
package browser

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/internal/testkit"
	"github.com/sbor-dev/sbor/test/platform"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// tools finds node, Chromium and playwright-core, or skips (fails when they are required).
func tools(t *testing.T) (node, chromium, playwright string) {
	t.Helper()
	required := os.Getenv("SBOR_REQUIRE_BROWSER") == "1"
	missing := func(format string, args ...any) {
		t.Helper()
		if required {
			t.Fatalf(format+" (SBOR_REQUIRE_BROWSER=1; run hack/browser-deps.sh)", args...)
		}
		t.Skipf(format+"; run hack/browser-deps.sh, or set SBOR_REQUIRE_BROWSER=1 to make this a failure", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found")
	}
	chromium = os.Getenv("SBOR_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("chromium not found at %s", chromium)
	}
	// playwright-core is installed by version into the user's cache (a no-op when it is).
	cmd := exec.Command(filepath.Join(platform.RepoRoot(), "hack", "browser-deps.sh"), "--playwright")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		missing("installing playwright-core failed: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return node, chromium, lines[len(lines)-1]
}

// TestScannerPageChecksTicketsIn is the whole door: a staff member logs in on a phone-sized
// page, picks the event, scans a ticket (VALID) and checks it in; scans a second one while
// offline, which is queued and sent when the network returns; and scans a third, already
// used, offline, whose queued check-in comes back as a DOUBLE ENTRY.
func TestScannerPageChecksTicketsIn(t *testing.T) {
	node, chromium, playwright := tools(t)
	p := platform.Start(t, platform.Options{})

	org := p.Organizer("Org")
	start := time.Now().Add(48 * time.Hour)
	eventID := org.Must(201, "POST", "/api/events", map[string]any{
		"title": "Door Test", "description": "Scanner page test.", "venue": "Hall B",
		"starts_at": rfc3339(start), "ends_at": rfc3339(start.Add(3 * time.Hour)),
	}).JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+eventID+"/publish", nil)
	typeID := org.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", map[string]any{
		"type": "standard", "price_cents": 2500, "currency": "EUR", "quantity": 10,
		"sales_start": rfc3339(time.Now().Add(-time.Minute)), "sales_end": rfc3339(start),
	}).JSON["id"].(string)

	staff := p.SignUp("Staff")
	org.Must(201, "POST", "/api/events/"+eventID+"/staff", map[string]string{"email": staff.Email})

	buyer := p.SignUp("Buyer")
	dir := t.TempDir()
	var ids []string
	for i := range 3 {
		tk := buyer.Must(201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": typeID})
		id := tk.JSON["id"].(string)
		ids = append(ids, id)
		qr := buyer.Must(200, "GET", "/api/tickets/"+id+"/qr", nil)
		img, err := png.Decode(bytes.NewReader(qr.Body))
		if err != nil {
			t.Fatalf("ticket %d: the QR is not a PNG: %v", i, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ticket"+string(rune('1'+i))+".y4m"), y4m(img, 1280, 720), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The third ticket is used before the scanner sees it: its offline check-in must come
	// back as a double entry.
	thirdCode := ""
	for _, tk := range platform.Items(buyer.Must(200, "GET", "/api/tickets", nil)) {
		if tk["id"] == ids[2] {
			thirdCode, _ = tk["signed_code"].(string)
		}
	}
	if thirdCode == "" {
		t.Fatal("the third ticket has no signed_code")
	}
	org.Must(200, "POST", "/api/tickets/"+thirdCode+"/checkin", nil)

	shots := os.Getenv("SBOR_BROWSER_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(dir, "screenshots")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(platform.RepoRoot(), "test", "browser", "scanner.mjs"))
	cmd.Env = append(os.Environ(),
		"SBOR_PLAYWRIGHT_DIR="+playwright,
		"SBOR_CHROMIUM="+chromium,
		"SBOR_GATEWAY="+p.Gateway,
		"SBOR_STAFF_EMAIL="+staff.Email,
		"SBOR_STAFF_PASSWORD=correct-horse-9",
		"SBOR_EVENT_ID="+eventID,
		"SBOR_TICKET_IDS="+strings.Join(ids, ","),
		"SBOR_VIDEO_DIR="+dir,
		"SBOR_SCREENSHOT_DIR="+shots,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("scanner.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the browser run failed: %v (screenshots in %s)", err, shots)
	}

	// What the page did is what the platform recorded: all three used.
	status := map[string]any{}
	for _, tk := range platform.Items(buyer.Must(200, "GET", "/api/tickets", nil)) {
		status[tk["id"].(string)] = tk["status"]
	}
	for i, id := range ids {
		if status[id] != "used" {
			t.Errorf("ticket %d is %v after the scans, want used", i+1, status[id])
		}
	}
}

// y4m renders img, centred on white, as a one-frame YUV4MPEG2 (4:2:0) video of w×h for
// Chromium's --use-file-for-fake-video-capture, which plays it in a loop. The QR is scaled by
// nearest neighbour (never smoothed) to fit 90% of the height.
func y4m(img image.Image, w, h int) []byte {
	b := img.Bounds()
	size := max(b.Dx(), b.Dy())
	target := h * 9 / 10
	scale := float64(target) / float64(size)
	if size <= target {
		scale = float64(target / size) // whole multiples keep the modules crisp
	}
	dw, dh := int(float64(b.Dx())*scale), int(float64(b.Dy())*scale)
	x0, y0 := (w-dw)/2, (h-dh)/2
	luma := make([]byte, w*h)
	for i := range luma {
		luma[i] = 235 // white in video range
	}
	for y := range dh {
		for x := range dw {
			sx, sy := b.Min.X+int(float64(x)/scale), b.Min.Y+int(float64(y)/scale)
			r, g, bl, _ := img.At(sx, sy).RGBA()
			// BT.601 luma in video range 16..235.
			lum := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 65535
			luma[(y0+y)*w+x0+x] = byte(16 + lum*219)
		}
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\nFRAME\n", w, h)
	out.Write(luma)
	chroma := bytes.Repeat([]byte{128}, (w/2)*(h/2)*2) // no colour
	out.Write(chroma)
	return out.Bytes()
}
