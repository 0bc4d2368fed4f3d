package security

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/test/platform"
)

// testBodyLimits: the gateway refuses a body over its 1 MiB limit whether or not the
// client announces the length, and a service refuses one over its 64 KiB JSON limit.
func testBodyLimits(t *testing.T, p *platform.Platform) {
	org := organizer(t, p, "Lena")
	huge := `{"title":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest("POST", p.Gateway+"/api/events", strings.NewReader(huge))
		if chunked {
			req.Body = io.NopCloser(strings.NewReader(huge)) // unknown length: sent chunked
			req.ContentLength = -1
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+org.token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			// The gateway may answer and close before reading the whole body.
			t.Logf("2 MiB body (chunked %v): %v", chunked, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("2 MiB body (chunked %v): %d %q %.200s", chunked, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		t.Logf("2 MiB body (chunked %v): %d in %s", chunked, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
	r := org.send("POST", "/api/events", raw(`{"title":"`+strings.Repeat("x", 100<<10)+`"}`))
	checkProblem(t, "100 KiB body", r)
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("100 KiB body: %d, want 413 from the service", r.Status)
	}
	if n := org.countAll(t, "/api/events?organizer=me"); n != 0 {
		t.Errorf("oversized bodies created %d events", n)
	}
}

// testPageCaps: every list pages by 20 unless asked, at most 100, and refuses more.
func testPageCaps(t *testing.T, p *platform.Platform) {
	org := organizer(t, p, "Paula")
	for range 25 {
		draft(t, org)
	}
	r := org.must(t, 200, "GET", "/api/events?organizer=me", nil)
	if n := len(items(r)); n != 20 || r.JSON["next_cursor"] == "" {
		t.Errorf("default page: %d items, next_cursor %q; want 20 and a cursor", n, r.JSON["next_cursor"])
	}
	next := org.must(t, 200, "GET", "/api/events?organizer=me&cursor="+url.QueryEscape(r.JSON["next_cursor"].(string)), nil)
	if n := len(items(next)); n != 5 || next.JSON["next_cursor"] != "" {
		t.Errorf("second page: %d items, next_cursor %q; want 5 and none", n, next.JSON["next_cursor"])
	}
	if n := len(items(org.must(t, 200, "GET", "/api/events?organizer=me&limit=100", nil))); n != 25 {
		t.Errorf("limit=100: %d items, want 25", n)
	}
	eventID, _ := published(t, org)
	for _, path := range []string{"/api/events", "/api/events?organizer=me", "/api/events/" + eventID + "/tickets", "/api/tickets", "/api/notifications"} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		org.must(t, 200, "GET", path+sep+"limit=100", nil)
		org.must(t, 400, "GET", path+sep+"limit=101", nil)
	}
}

// testSlowClients: a client that sends its headers slowly (slowloris) is cut off by the
// gateway's header timeout; one that sends its body slowly by its read timeout; oversized
// headers are refused.
func testSlowClients(t *testing.T, p *platform.Platform) {
	addr := strings.TrimPrefix(p.Gateway, "http://")
	t.Run("slow headers", func(t *testing.T) {
		t.Parallel()
		held, reason := dripUntilCut(t, addr, "GET /api/events HTTP/1.1\r\nHost: sbor\r\nX-Slow: ", 40*time.Second)
		t.Logf("a client dripping its headers was cut off after %s (%s)", held.Round(100*time.Millisecond), reason)
		if held > 12*time.Second {
			t.Errorf("the gateway held a slow-header connection for %s", held)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		t.Parallel()
		head := "POST /api/auth/login HTTP/1.1\r\nHost: sbor\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"
		held, reason := dripUntilCut(t, addr, head, 60*time.Second)
		t.Logf("a client dripping its body was cut off after %s (%s)", held.Round(100*time.Millisecond), reason)
		if held > 25*time.Second {
			t.Errorf("the gateway held a slow-body connection for %s", held)
		}
		// 408 from the gateway, or the 400 unreadable_body of the service when it saw the
		// truncated body first; never a 5xx (blaming the service) nor a 200.
		if !strings.HasPrefix(reason, "HTTP/1.1 408") && !strings.HasPrefix(reason, "HTTP/1.1 400") {
			t.Errorf("a client too slow with its body got %q, want 408 Request Timeout", reason)
		}
	})
	t.Run("huge headers", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest("GET", p.Gateway+"/api/events", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", 64<<10))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KiB of headers: %d, want 431", resp.StatusCode)
		}
	})
}

// dripUntilCut sends head, then one byte a second, until the server closes the connection
// or answers; it returns how long the connection lasted after head and why it ended.
func dripUntilCut(t *testing.T, addr, head string, limit time.Duration) (time.Duration, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	answer := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil && line == "" {
			answer <- "closed: " + err.Error()
			return
		}
		answer <- strings.TrimSpace(line)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < limit {
		select {
		case a := <-answer:
			return time.Since(start), a
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err != nil {
				return time.Since(start), fmt.Sprintf("write failed: %v", err)
			}
		}
	}
	return time.Since(start), "never cut off"
}
