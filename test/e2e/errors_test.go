package e2e

import (
	"github.com/sbor-dev/sbor/test/platform"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestErrorStatuses covers every "must also answer" of DESIGN.md section 3 through the
// gateway, each with its problem+json.
func TestErrorStatuses(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{"SBOR_LOGIN_MAX_PER_ACCOUNT": "5"}})
	anon := p.Anonymous()
	ann := p.SignUp("Ann")
	org, other := p.Organizer("Olga"), p.Organizer("Oscar")

	// Flow 1: register / login / refresh.
	anon.Must(400, "POST", "/api/auth/register", map[string]string{"email": "nope", "name": "X", "password": "correct-horse-9"})
	anon.Must(400, "POST", "/api/auth/register", map[string]string{"email": "weak@example.com", "name": "X", "password": "short"})
	anon.Must(409, "POST", "/api/auth/register", map[string]string{"email": strings.ToUpper(ann.Email), "name": "X", "password": "correct-horse-9"})
	wrong := anon.Must(401, "POST", "/api/auth/login", map[string]string{"email": ann.Email, "password": "wrong-password-1"})
	unknown := anon.Must(401, "POST", "/api/auth/login", map[string]string{"email": "ghost@example.com", "password": "wrong-password-1"})
	if wrong.JSON["detail"] != unknown.JSON["detail"] || wrong.JSON["code"] != unknown.JSON["code"] {
		t.Fatalf("unknown email answered differently: %s / %s", wrong.Body, unknown.Body)
	}
	victim := p.SignUp("Victim")
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := anon.Do("POST", "/api/auth/login", map[string]string{"email": victim.Email, "password": "guessing-123"})
			mu.Lock()
			counts[r.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[429] == 0 || counts[401]+counts[429] != 12 {
		t.Fatalf("brute force answers %v, want 429s", counts)
	}
	pair := anon.Must(200, "POST", "/api/auth/login", map[string]string{"email": ann.Email, "password": "correct-horse-9"})
	refresh := pair.JSON["refresh_token"]
	anon.Must(200, "POST", "/api/auth/refresh", map[string]any{"refresh_token": refresh})
	anon.Must(401, "POST", "/api/auth/refresh", map[string]any{"refresh_token": refresh})

	// Flow 2: no or invalid token.
	anon.Must(401, "GET", "/api/users/me", nil)
	(&platform.Client{P: p, Token: "not.a.jwt"}).Must(401, "GET", "/api/users/me", nil)

	// Flow 4: only organizers create; fields are validated.
	start := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	ann.Must(403, "POST", "/api/events", newEvent("Mine", start))
	anon.Must(401, "POST", "/api/events", newEvent("Mine", start))
	past := newEvent("Past", time.Now().Add(-time.Hour))
	org.Must(400, "POST", "/api/events", past)
	backwards := newEvent("Backwards", start)
	backwards["ends_at"] = rfc3339(start.Add(-time.Hour))
	org.Must(400, "POST", "/api/events", backwards)
	org.Must(400, "POST", "/api/events", newEvent("   ", start))
	org.Must(400, "POST", "/api/events", map[string]any{"title": "x", "starts_at": "tomorrow"})

	draft := org.Must(201, "POST", "/api/events", newEvent("Draft", start)).JSON["id"].(string)
	// Reading: 404 for unknown ids and for someone else's draft.
	anon.Must(404, "GET", "/api/events/00000000-0000-0000-0000-000000000000", nil)
	anon.Must(404, "GET", "/api/events/not-a-uuid", nil)
	other.Must(404, "GET", "/api/events/"+draft, nil)
	mine := platform.Items(org.Must(200, "GET", "/api/events?organizer=me", nil))
	if len(mine) != 1 || mine[0]["id"] != draft {
		t.Fatalf("?organizer=me: %v", mine)
	}

	// Flow 5: update — 403 for another organizer, 404 unknown, 409 once published.
	other.Must(403, "PUT", "/api/events/"+draft, newEvent("Hijack", start))
	org.Must(404, "PUT", "/api/events/00000000-0000-0000-0000-000000000000", newEvent("X", start))
	// Flow 7 before publishing: 409.
	org.Must(409, "POST", "/api/events/"+draft+"/ticket-types", ticketType("standard", 5, start))
	// Flow 6: publish — 403 for others, 409 when not a draft.
	other.Must(403, "POST", "/api/events/"+draft+"/publish", nil)
	org.Must(200, "POST", "/api/events/"+draft+"/publish", nil)
	org.Must(409, "POST", "/api/events/"+draft+"/publish", nil)
	org.Must(409, "PUT", "/api/events/"+draft, newEvent("Too late", start))
	id := draft

	// Flow 7: 403 for others, 400 for a bad window or quantity.
	other.Must(403, "POST", "/api/events/"+id+"/ticket-types", ticketType("standard", 5, start))
	badWindow := ticketType("standard", 5, start)
	badWindow["sales_end"] = rfc3339(time.Now().Add(-2 * time.Hour))
	org.Must(400, "POST", "/api/events/"+id+"/ticket-types", badWindow)
	org.Must(400, "POST", "/api/events/"+id+"/ticket-types", ticketType("standard", 0, start))
	org.Must(400, "POST", "/api/events/"+id+"/ticket-types", ticketType("platinum", 5, start))
	one := org.Must(201, "POST", "/api/events/"+id+"/ticket-types", ticketType("vip", 1, start)).JSON["id"].(string)
	later := ticketType("standard", 5, start)
	later["sales_start"] = rfc3339(time.Now().Add(time.Hour))
	notYet := org.Must(201, "POST", "/api/events/"+id+"/ticket-types", later).JSON["id"].(string)

	// Flow 8: sold out, outside the window, idempotency conflict.
	tk := ann.Must(201, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": one}, "Idempotency-Key", "k1")
	p.SignUp("Late").Must(409, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": one})
	ann.Must(409, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": notYet})
	ann.Must(422, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": notYet}, "Idempotency-Key", "k1")
	ann.Must(400, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": "nope"})
	anon.Must(401, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": one})

	// Attendee list and QR: owners only.
	other.Must(403, "GET", "/api/events/"+id+"/tickets", nil)
	ann.Must(403, "GET", "/api/events/"+id+"/tickets", nil)
	other.Must(404, "GET", "/api/tickets/"+tk.JSON["id"].(string)+"/qr", nil)

	// Flows 11–12: other organizers are refused; unknown codes are 404.
	code := tk.JSON["code"].(string)
	other.Must(403, "POST", "/api/tickets/"+code+"/validate", nil)
	other.Must(403, "POST", "/api/tickets/"+code+"/checkin", nil)
	ann.Must(403, "POST", "/api/tickets/"+code+"/checkin", nil)
	org.Must(404, "POST", "/api/tickets/ABCDEFGHJKMNPQRSTVWXYZ0123/checkin", nil)
	org.Must(404, "POST", "/api/tickets/not-a-code/checkin", nil)

	// Flow 13: only the owner cancels, once.
	other.Must(403, "POST", "/api/events/"+id+"/cancel", nil)
	org.Must(200, "POST", "/api/events/"+id+"/cancel", nil)
	org.Must(409, "POST", "/api/events/"+id+"/cancel", nil)
	platform.Eventually(t, 15*time.Second, "the cancelled ticket", func() bool {
		r := org.Do("POST", "/api/tickets/"+code+"/checkin", nil)
		return r.Status == 409
	})
	ann.Must(409, "POST", "/api/events/"+id+"/tickets", map[string]string{"ticket_type_id": notYet})
}
