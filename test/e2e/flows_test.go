package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/sbor-dev/sbor/test/platform"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// newEvent returns a valid create/update body for an event starting at start.
func newEvent(title string, start time.Time) map[string]any {
	return map[string]any{
		"title": title, "description": "An evening of talks.", "venue": "Hall A",
		"starts_at": rfc3339(start), "ends_at": rfc3339(start.Add(3 * time.Hour)),
	}
}

func ticketType(kind string, quantity int, salesEnd time.Time) map[string]any {
	return map[string]any{
		"type": kind, "price_cents": 2500, "currency": "EUR", "quantity": quantity,
		"sales_start": rfc3339(time.Now().Add(-time.Minute)), "sales_end": rfc3339(salesEnd),
	}
}

// notifications returns the user's notifications of one type about one event.
func notificationsOf(c *platform.Client, typ, eventID string) []map[string]any {
	var out []map[string]any
	for _, n := range platform.Items(c.Must(200, "GET", "/api/notifications?limit=100", nil)) {
		if n["type"] == typ && n["event_id"] == eventID {
			out = append(out, n)
		}
	}
	return out
}

// TestFifteenFlows is the platform's story, flows 1–15 of DESIGN.md, through the gateway.
func TestFifteenFlows(t *testing.T) {
	p := platform.Start(t, platform.Options{})

	// 1–3: register, log in, profile, become organizer.
	ann, bob := p.SignUp("Ann"), p.SignUp("Bob")
	org := p.Organizer("Olga")
	me := ann.Must(200, "GET", "/api/users/me", nil)
	if me.JSON["email"] != ann.Email || me.JSON["role"] != "user" {
		t.Fatalf("profile: %s", me.Body)
	}
	if r := org.Must(200, "GET", "/api/users/me", nil); r.JSON["role"] != "organizer" {
		t.Fatalf("organizer profile: %s", r.Body)
	}

	// 4–6: create a draft, edit it, publish it.
	start := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	ev := org.Must(201, "POST", "/api/events", newEvent("Go Meetup", start))
	eventID := ev.JSON["id"].(string)
	if ev.JSON["status"] != "draft" || ev.JSON["organizer_id"] != org.UserID {
		t.Fatalf("created event: %s", ev.Body)
	}
	ann.Must(404, "GET", "/api/events/"+eventID, nil) // a draft is its owner's alone
	edited := newEvent("Go Meetup #42", start)
	if r := org.Must(200, "PUT", "/api/events/"+eventID, edited); r.JSON["title"] != "Go Meetup #42" {
		t.Fatalf("edit: %s", r.Body)
	}
	if r := org.Must(200, "POST", "/api/events/"+eventID+"/publish", nil); r.JSON["status"] != "published" {
		t.Fatalf("publish: %s", r.Body)
	}
	if r := p.Anonymous().Must(200, "GET", "/api/events/"+eventID, nil); r.JSON["title"] != "Go Meetup #42" {
		t.Fatalf("public event: %s", r.Body)
	}
	listed := false
	for _, e := range platform.Items(p.Anonymous().Must(200, "GET", "/api/events?limit=100", nil)) {
		listed = listed || e["id"] == eventID
	}
	if !listed {
		t.Fatal("published event not in the public list")
	}

	// 7: ticket types.
	types := map[string]string{}
	for _, kind := range []string{"standard", "vip", "early_bird"} {
		r := org.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", ticketType(kind, 10, start.Add(-time.Hour)))
		if r.JSON["sold"] != float64(0) || r.JSON["available"] != float64(10) || r.JSON["type"] != kind {
			t.Fatalf("ticket type: %s", r.Body)
		}
		types[kind] = r.JSON["id"].(string)
	}

	// 8: buy. An Idempotency-Key retry returns the same ticket.
	buy := func(c *platform.Client, kind string, headers ...string) platform.Response {
		return c.Must(201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": types[kind]}, headers...)
	}
	purchasedAt := time.Now()
	annStd := buy(ann, "standard", "Idempotency-Key", "ann-std-1")
	again := buy(ann, "standard", "Idempotency-Key", "ann-std-1")
	if again.JSON["id"] != annStd.JSON["id"] || annStd.JSON["status"] != "active" || len(annStd.JSON["code"].(string)) < 26 {
		t.Fatalf("purchase / idempotent retry: %s / %s", annStd.Body, again.Body)
	}
	annVip := buy(ann, "vip")
	bobStd := buy(bob, "standard")
	for _, tt := range platform.Items(p.Anonymous().Must(200, "GET", "/api/events/"+eventID+"/ticket-types", nil)) {
		want := map[string]float64{"standard": 2, "vip": 1, "early_bird": 0}[tt["type"].(string)]
		if tt["sold"] != want || tt["available"] != 10-want {
			t.Fatalf("ticket type counts: %v", tt)
		}
	}

	// 9: the purchase notification.
	platform.Eventually(t, 10*time.Second, "ticket.purchased notification", func() bool {
		return len(notificationsOf(ann, "ticket.purchased", eventID)) == 2
	})
	t.Logf("purchase → notification visible: %s", time.Since(purchasedAt))

	// 10: the buyer's tickets and QR code.
	mine := platform.Items(ann.Must(200, "GET", "/api/tickets", nil))
	if len(mine) != 2 {
		t.Fatalf("ann's tickets: %v", mine)
	}
	qr := ann.Must(200, "GET", "/api/tickets/"+annStd.JSON["id"].(string)+"/qr", nil)
	if qr.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("qr content type %q", qr.Header.Get("Content-Type"))
	}
	if _, err := png.Decode(bytes.NewReader(qr.Body)); err != nil {
		t.Fatalf("qr is not a PNG: %v", err)
	}
	bob.Must(404, "GET", "/api/tickets/"+annStd.JSON["id"].(string)+"/qr", nil)
	attendees := platform.Items(org.Must(200, "GET", "/api/events/"+eventID+"/tickets", nil))
	if len(attendees) != 3 {
		t.Fatalf("attendee list: %v", attendees)
	}

	// 11–12: validate and check in at the door; a second check-in never succeeds.
	code := annStd.JSON["code"].(string)
	if r := org.Must(200, "POST", "/api/tickets/"+code+"/validate", nil); r.JSON["valid"] != true || r.JSON["status"] != "active" {
		t.Fatalf("validate: %s", r.Body)
	}
	if r := org.Must(200, "POST", "/api/tickets/"+code+"/checkin", nil); r.JSON["status"] != "used" || r.JSON["checked_in_at"] == nil {
		t.Fatalf("checkin: %s", r.Body)
	}
	org.Must(409, "POST", "/api/tickets/"+code+"/checkin", nil)
	if r := org.Must(200, "POST", "/api/tickets/"+code+"/validate", nil); r.JSON["valid"] != false || r.JSON["status"] != "used" || r.JSON["reason"] == "" {
		t.Fatalf("validate a used ticket: %s", r.Body)
	}

	// 13–14: cancel; every holder is told once, however many tickets they hold.
	if r := org.Must(200, "POST", "/api/events/"+eventID+"/cancel", nil); r.JSON["status"] != "cancelled" {
		t.Fatalf("cancel: %s", r.Body)
	}
	platform.Eventually(t, 15*time.Second, "cancellation notifications", func() bool {
		return len(notificationsOf(ann, "event.cancelled", eventID)) == 1 && len(notificationsOf(bob, "event.cancelled", eventID)) == 1
	})
	platform.Eventually(t, 15*time.Second, "tickets cancelled", func() bool {
		for _, tk := range platform.Items(bob.Must(200, "GET", "/api/tickets", nil)) {
			if tk["id"] == bobStd.JSON["id"] && tk["status"] == "cancelled" {
				return true
			}
		}
		return false
	})
	statuses := map[string]string{}
	for _, tk := range platform.Items(ann.Must(200, "GET", "/api/tickets", nil)) {
		statuses[tk["id"].(string)] = tk["status"].(string)
	}
	if statuses[annVip.JSON["id"].(string)] != "cancelled" {
		t.Fatalf("ann's vip ticket after cancel: %v", statuses)
	}
	time.Sleep(time.Second) // a redelivery would show up by now
	if n := len(notificationsOf(ann, "event.cancelled", eventID)); n != 1 {
		t.Fatalf("ann has %d cancellation notifications", n)
	}
	n := notificationsOf(bob, "event.cancelled", eventID)[0]
	if !bytes.Contains([]byte(n["body"].(string)), []byte("Go Meetup #42")) {
		t.Fatalf("notification does not name the event: %v", n)
	}
	ann.Must(409, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": types["vip"]})

	// 15: a reminder for an event that starts within the lead time.
	soon := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	ev2 := org.Must(201, "POST", "/api/events", newEvent("Rust Evening", soon))
	id2 := ev2.JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+id2+"/publish", nil)
	tt2 := org.Must(201, "POST", "/api/events/"+id2+"/ticket-types", ticketType("standard", 5, soon))
	bob.Must(201, "POST", "/api/events/"+id2+"/tickets", map[string]string{"ticket_type_id": tt2.JSON["id"].(string)})
	platform.Eventually(t, 20*time.Second, "reminder notification", func() bool {
		return len(notificationsOf(bob, "event.reminder", id2)) == 1
	})
}

// TestPurchaseToNotificationDelay measures how long a purchase takes to become a visible
// notification, the figure issue 4 asks for, and writes it to .bench/e2e-notify.json.
func TestPurchaseToNotificationDelay(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	org := p.Organizer("Delay")
	start := time.Now().Add(48 * time.Hour)
	id := org.Must(201, "POST", "/api/events", newEvent("Delay Test", start)).JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+id+"/publish", nil)
	typeID := org.Must(201, "POST", "/api/events/"+id+"/ticket-types", ticketType("standard", 1000, start)).JSON["id"].(string)

	// Warm up: the first notification also waits for the consumer group to form, which is
	// start-up, not delivery; measure from the second on.
	warm := p.SignUp("warmup")
	warm.Must(201, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": typeID})
	platform.Eventually(t, 30*time.Second, "the warm-up notification", func() bool {
		return len(notificationsOf(warm, "ticket.purchased", id)) == 1
	})

	const buyers = 40
	delays := make([]time.Duration, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := p.SignUp(fmt.Sprintf("buyer%d", i))
			bought := time.Now()
			c.Must(201, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": typeID})
			for time.Since(bought) < 20*time.Second {
				if len(notificationsOf(c, "ticket.purchased", id)) == 1 {
					delays[i] = time.Since(bought)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Errorf("buyer %d: no notification within 20s", i)
		}()
	}
	wg.Wait()
	sort.Slice(delays, func(a, b int) bool { return delays[a] < delays[b] })
	median, p99 := delays[buyers/2], delays[buyers*99/100]
	t.Logf("purchase → notification: median %s, p99 %s, max %s (%d buyers)", median, p99, delays[buyers-1], buyers)
	report := map[string]any{"buyers": buyers, "median_ms": median.Milliseconds(), "p99_ms": p99.Milliseconds(), "max_ms": delays[buyers-1].Milliseconds()}
	b, _ := json.MarshalIndent(report, "", "  ")
	dir := filepath.Join(platform.RepoRoot(), ".bench")
	_ = os.MkdirAll(dir, 0o755)
	_ = os.WriteFile(filepath.Join(dir, "e2e-notify.json"), b, 0o644)
}
