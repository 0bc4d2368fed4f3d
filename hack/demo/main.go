// Command demo walks the fifteen flows of the design against a running platform (make dev)
// and prints each request and the interesting part of each answer, so a newcomer sees Sbor
// work in a minute.
//
//	make dev     # in one terminal
//	make demo    # in another (SBOR_DEMO_URL overrides http://127.0.0.1:8080)
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var (
	base   = envOr("SBOR_DEMO_URL", "http://127.0.0.1:8080")
	client = &http.Client{Timeout: 15 * time.Second}
	suffix = func() string { b := make([]byte, 3); _, _ = rand.Read(b); return hex.EncodeToString(b) }()
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type user struct{ name, email, token, id string }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// call sends a request, prints it and the chosen fields of the answer, and returns the body.
func call(u *user, method, path string, body any, want int, show ...string) map[string]any {
	var rd io.Reader
	var shown string
	if body != nil {
		b, _ := json.Marshal(body)
		rd, shown = bytes.NewReader(b), " "+string(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	who := "anonymous"
	if u != nil && u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
		who = u.name
	}
	fmt.Printf("\n\033[1m%-9s %s %s\033[0m%s\n", who, method, path, truncate(shown, 140))
	resp, err := client.Do(req)
	if err != nil {
		fail("%v (is make dev running at %s?)", err, base)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	mark := "\033[32m✓\033[0m"
	if resp.StatusCode != want {
		mark = "\033[31m✗\033[0m"
	}
	fmt.Printf("  %s %d %s", mark, resp.StatusCode, http.StatusText(resp.StatusCode))
	if resp.StatusCode >= 400 && out != nil {
		fmt.Printf("  code=%v: %v", out["code"], out["detail"])
	}
	for _, f := range show {
		if v, ok := out[f]; ok {
			fmt.Printf("  %s=%v", f, truncate(fmt.Sprint(v), 60))
		}
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
		fmt.Printf("  (%s, %d bytes)", resp.Header.Get("Content-Type"), len(raw))
	}
	fmt.Println()
	if resp.StatusCode != want {
		fail("expected %d", want)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "\ndemo stopped: "+format+"\n", args...)
	os.Exit(1)
}

func section(title string) { fmt.Printf("\n\033[36m── %s ──\033[0m\n", title) }

func signup(name string) *user {
	u := &user{name: name, email: strings.ToLower(name) + "-" + suffix + "@example.com"}
	out := call(nil, "POST", "/api/auth/register", map[string]string{"email": u.email, "name": name, "password": "correct-horse-9"}, 201, "id", "email", "role")
	u.id = out["id"].(string)
	tok := call(nil, "POST", "/api/auth/login", map[string]string{"email": u.email, "password": "correct-horse-9"}, 200, "token_type", "expires_in")
	u.token = tok["access_token"].(string)
	return u
}

func items(m map[string]any) []map[string]any {
	raw, _ := m["items"].([]any)
	var out []map[string]any
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}

func waitNotification(u *user, typ, eventID string) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", base+"/api/notifications", nil)
		req.Header.Set("Authorization", "Bearer "+u.token)
		if resp, err := client.Do(req); err == nil {
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			for _, n := range items(out) {
				if n["type"] == typ && n["event_id"] == eventID {
					fmt.Printf("\n\033[1m%-9s GET /api/notifications\033[0m\n  \033[32m✓\033[0m %s: %q — %q\n", u.name, typ, n["title"], n["body"])
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	fail("no %s notification for %s", typ, u.name)
}

func run() error {
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	section("1–3  accounts: register, log in, profile, become organizer")
	ann, bob, olga := signup("Ann"), signup("Bob"), signup("Olga")
	call(ann, "GET", "/api/users/me", nil, 200, "email", "role")
	org := call(olga, "POST", "/api/users/me/become-organizer", nil, 200)
	olga.token = org["access_token"].(string)
	fmt.Println("  → Olga is now an organizer, with a fresh token carrying the role")

	section("4–6  an event: create a draft, edit it, publish it")
	start := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Minute)
	ev := map[string]any{"title": "Go Meetup", "description": "Talks and pizza", "venue": "Hall A", "starts_at": rfc(start), "ends_at": rfc(start.Add(3 * time.Hour))}
	created := call(olga, "POST", "/api/events", ev, 201, "id", "status")
	id := created["id"].(string)
	call(ann, "POST", "/api/events", ev, 403)
	ev["title"] = "Go Meetup #42"
	call(olga, "PUT", "/api/events/"+id, ev, 200, "title")
	call(olga, "POST", "/api/events/"+id+"/publish", nil, 200, "status")

	section("7  ticket types")
	types := map[string]string{}
	for _, kind := range []string{"standard", "vip", "early_bird"} {
		tt := call(olga, "POST", "/api/events/"+id+"/ticket-types", map[string]any{"type": kind, "price_cents": 2500, "currency": "EUR", "quantity": 100,
			"sales_start": rfc(time.Now().Add(-time.Minute)), "sales_end": rfc(start)}, 201, "type", "quantity", "available")
		types[kind] = tt["id"].(string)
	}

	section("8–10  buy, get notified, list tickets, fetch the QR code")
	tk := call(ann, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": types["vip"]}, 201, "status", "code")
	call(bob, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": types["standard"]}, 201, "status", "code")
	waitNotification(ann, "ticket.purchased", id)
	call(ann, "GET", "/api/tickets", nil, 200)
	call(ann, "GET", "/api/tickets/"+tk["id"].(string)+"/qr", nil, 200)

	section("11–12  at the door: validate, check in, and a second check-in fails")
	code := tk["code"].(string)
	call(olga, "POST", "/api/tickets/"+code+"/validate", nil, 200, "valid", "status")
	call(olga, "POST", "/api/tickets/"+code+"/checkin", nil, 200, "status", "checked_in_at")
	call(olga, "POST", "/api/tickets/"+code+"/checkin", nil, 409)

	section("13–14  cancel the event; every holder is told")
	call(olga, "POST", "/api/events/"+id+"/cancel", nil, 200, "status")
	waitNotification(ann, "event.cancelled", id)
	waitNotification(bob, "event.cancelled", id)

	section("15  a reminder for an event inside the reminder lead time")
	soon := time.Now().Add(2 * time.Hour).Truncate(time.Minute)
	ev2 := call(olga, "POST", "/api/events", map[string]any{"title": "Rust Evening", "venue": "Hall B", "description": "", "starts_at": rfc(soon), "ends_at": rfc(soon.Add(2 * time.Hour))}, 201, "id")
	id2 := ev2["id"].(string)
	call(olga, "POST", "/api/events/"+id2+"/publish", nil, 200, "status")
	tt := call(olga, "POST", "/api/events/"+id2+"/ticket-types", map[string]any{"type": "standard", "price_cents": 0, "currency": "EUR", "quantity": 10,
		"sales_start": rfc(time.Now().Add(-time.Minute)), "sales_end": rfc(soon)}, 201)
	call(bob, "POST", "/api/events/"+id2+"/tickets", map[string]string{"ticket_type_id": tt["id"].(string)}, 201, "status")
	waitNotification(bob, "event.reminder", id2)

	fmt.Printf("\n\033[32mAll fifteen flows work.\033[0m\n")
	return nil
}
