package ticket_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/ticket"
	"github.com/sbor-dev/sbor/services/user"
)

// staffPlatform is the event and ticket services with a real user service to resolve emails.
type staffPlatform struct {
	*platform
	user *running
}

func newStaffPlatform(t *testing.T) *staffPlatform {
	t.Helper()
	userDB := pgtest.NewDatabase(t)
	u := start(t, "user", func(ctx context.Context, ln net.Listener) error {
		return user.Run(ctx, testLogger(), user.Config{DatabaseURL: userDB, MaxConns: 4, Migrate: true,
			AccessTTL: time.Minute, RefreshTTL: time.Hour, LoginLimits: user.Limits{Window: time.Minute, PerIP: 1000, PerAccount: 1000}}, ln)
	})
	p := newPlatformWith(t, nil, func(cfg *ticket.Config) {
		cfg.UserURL = u.url
		cfg.StatsInterval = -1 // every stats request reads the database: the test sees each change at once
	})
	return &staffPlatform{platform: p, user: u}
}

// register signs a user up and returns their identity as the gateway would set it.
func (p *staffPlatform) register(email string, role identity.Role) *identity.Identity {
	p.t.Helper()
	resp, err := p.call(p.user.url, req{method: "POST", path: "/api/auth/register",
		body: map[string]string{"email": email, "name": "Staff Test", "password": "correct-horse-9"}})
	if err != nil || resp.status != http.StatusCreated {
		p.t.Fatalf("register %s: %v %d %s", email, err, resp.status, resp.raw)
	}
	return &identity.Identity{UserID: uuid.MustParse(resp.str("id")), Role: role}
}

func staffPath(eventID string) string { return "/api/events/" + eventID + "/staff" }

// TestDoorStaff walks through granting, using and revoking scanning rights.
func TestDoorStaff(t *testing.T) {
	t.Parallel()
	p := newStaffPlatform(t)
	suffix := strings.ToLower(uuid.NewString()[:8])
	org := p.register("olga-"+suffix+"@example.com", identity.RoleOrganizer)
	rival := p.register("oscar-"+suffix+"@example.com", identity.RoleOrganizer)
	door := p.register("door-"+suffix+"@example.com", identity.RoleUser)
	guest := p.register("guest-"+suffix+"@example.com", identity.RoleUser)

	eventA := p.publishedEvent(org, "Door night")
	typeA := p.ticketType(org, eventA, "standard", 10)
	vipA := p.ticketType(org, eventA, "vip", 2)
	eventB := p.publishedEvent(rival, "Rival night")
	typeB := p.ticketType(rival, eventB, "standard", 10)
	draft := p.draftEvent(org, "Not yet")

	// Grant: 201, then 200 with the same grant (idempotent), by an email typed loosely.
	first := p.must(http.StatusCreated, req{method: "POST", path: staffPath(eventA), as: org,
		body: map[string]string{"email": "  DOOR-" + strings.ToUpper(suffix) + "@Example.com "}})
	if first.str("user_id") != door.UserID.String() || first.str("email") != "door-"+suffix+"@example.com" || first.str("granted_at") == "" {
		t.Fatalf("grant: %s", first.raw)
	}
	again := p.must(http.StatusOK, req{method: "POST", path: staffPath(eventA), as: org, body: map[string]string{"email": "door-" + suffix + "@example.com"}})
	if string(again.raw) != string(first.raw) {
		t.Errorf("second grant %s, want the first %s", again.raw, first.raw)
	}
	list := p.must(http.StatusOK, req{method: "GET", path: staffPath(eventA), as: org}).items()
	if len(list) != 1 || list[0]["user_id"] != door.UserID.String() || len(list[0]) != 3 {
		t.Fatalf("staff list: %v", list)
	}

	// Refusals of a grant.
	for name, c := range map[string]struct {
		as     *identity.Identity
		event  string
		body   any
		status int
		code   string
	}{
		"unknown email":      {org, eventA, map[string]string{"email": "nobody-" + suffix + "@example.com"}, 422, "user_not_found"},
		"own email":          {org, eventA, map[string]string{"email": "olga-" + suffix + "@example.com"}, 422, "cannot_grant_self"},
		"not an email":       {org, eventA, map[string]string{"email": "door"}, 400, "validation_failed"},
		"no email":           {org, eventA, map[string]string{}, 400, "validation_failed"},
		"unknown field":      {org, eventA, map[string]any{"email": "door-" + suffix + "@example.com", "role": "owner"}, 400, "malformed_json"},
		"another's event":    {rival, eventA, map[string]string{"email": "guest-" + suffix + "@example.com"}, 404, "event_not_found"},
		"plain user":         {guest, eventA, map[string]string{"email": "guest-" + suffix + "@example.com"}, 404, "event_not_found"},
		"draft":              {org, draft, map[string]string{"email": "door-" + suffix + "@example.com"}, 409, "event_not_published"},
		"another's draft":    {rival, draft, map[string]string{"email": "door-" + suffix + "@example.com"}, 404, "event_not_found"},
		"unknown event":      {org, uuid.NewString(), map[string]string{"email": "door-" + suffix + "@example.com"}, 404, "event_not_found"},
		"malformed event id": {org, "nope", map[string]string{"email": "door-" + suffix + "@example.com"}, 404, "event_not_found"},
	} {
		r := p.tickets(req{method: "POST", path: staffPath(c.event), as: c.as, body: c.body})
		if r.status != c.status || r.str("code") != c.code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.raw, c.status, c.code)
		}
	}
	for _, as := range []*identity.Identity{rival, guest, door} {
		p.must(http.StatusNotFound, req{method: "GET", path: staffPath(eventA), as: as})
		p.must(http.StatusNotFound, req{method: "DELETE", path: staffPath(eventA) + "/" + door.UserID.String(), as: as})
	}
	p.must(http.StatusOK, req{method: "GET", path: staffPath(draft), as: org})
	p.must(http.StatusNotFound, req{method: "GET", path: staffPath(draft), as: rival})

	// Tickets: three of A (two standard, one vip), one of B.
	t1 := p.mustBuy(guest, eventA, typeA)
	t2 := p.mustBuy(guest, eventA, typeA)
	t3 := p.mustBuy(guest, eventA, vipA)
	tB := p.mustBuy(guest, eventB, typeB)

	// Staff validate and check in the event's tickets, exactly as the organizer does.
	v := p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + t1.str("code") + "/validate", as: door})
	if v.body["valid"] != true {
		t.Fatalf("validate by staff: %s", v.raw)
	}
	used := p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + t1.str("code") + "/checkin", as: door})
	if used.str("status") != "used" {
		t.Fatalf("check-in by staff: %s", used.raw)
	}
	if r := p.tickets(req{method: "POST", path: "/api/tickets/" + t1.str("code") + "/checkin", as: door}); r.status != 409 || r.str("code") != "already_used" {
		t.Errorf("second check-in: %d %s", r.status, r.raw)
	}
	p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + t3.str("code") + "/checkin", as: org})
	// ...and nothing of another event.
	for _, op := range []string{"validate", "checkin"} {
		if r := p.tickets(req{method: "POST", path: "/api/tickets/" + tB.str("code") + "/" + op, as: door}); r.status != 403 || r.str("code") != "not_owner" {
			t.Errorf("staff of A, %s of B's ticket: %d %s", op, r.status, r.raw)
		}
	}
	// Nor may staff manage the event.
	p.must(http.StatusNotFound, req{method: "POST", path: staffPath(eventA), as: door, body: map[string]string{"email": "guest-" + suffix + "@example.com"}})
	p.must(http.StatusForbidden, req{method: "GET", path: "/api/events/" + eventA + "/tickets", as: door})

	// The scanner's event list.
	scan := func(as *identity.Identity) []map[string]any {
		return p.must(http.StatusOK, req{method: "GET", path: "/api/staff/events", as: as}).items()
	}
	if got := scan(door); len(got) != 1 || got[0]["event_id"] != eventA || got[0]["role"] != "staff" || got[0]["title"] != "Door night" || got[0]["starts_at"] == nil {
		t.Errorf("door's events: %v", got)
	}
	if got := scan(org); len(got) != 1 || got[0]["event_id"] != eventA || got[0]["role"] != "owner" || got[0]["starts_at"] == nil {
		t.Errorf("organizer's events (the draft has no types): %v", got)
	}
	if got := scan(rival); len(got) != 1 || got[0]["event_id"] != eventB || got[0]["role"] != "owner" {
		t.Errorf("rival's events: %v", got)
	}
	if got := scan(guest); len(got) != 0 {
		t.Errorf("guest's events: %v", got)
	}

	// Live counts for the organizer and staff; 404 for anyone else.
	stats := func(as *identity.Identity) response {
		return p.must(http.StatusOK, req{method: "GET", path: "/api/events/" + eventA + "/stats", as: as})
	}
	for _, as := range []*identity.Identity{org, door} {
		s := stats(as)
		if s.num("sold") != 3 || s.num("checked_in") != 2 || s.num("remaining") != 9 || s.str("event_id") != eventA || s.str("as_of") == "" {
			t.Errorf("stats: %s", s.raw)
		}
		types, _ := s.body["ticket_types"].([]any)
		if len(types) != 2 {
			t.Fatalf("stats types: %s", s.raw)
		}
		std, vip := types[0].(map[string]any), types[1].(map[string]any)
		if std["name"] != "standard" || std["sold"] != 2.0 || std["checked_in"] != 1.0 || std["remaining"] != 8.0 || std["quantity"] != 10.0 ||
			vip["name"] != "vip" || vip["sold"] != 1.0 || vip["checked_in"] != 1.0 || vip["remaining"] != 1.0 {
			t.Errorf("stats per type: %s", s.raw)
		}
	}
	for _, as := range []*identity.Identity{rival, guest} {
		p.must(http.StatusNotFound, req{method: "GET", path: "/api/events/" + eventA + "/stats", as: as})
	}
	p.must(http.StatusNotFound, req{method: "GET", path: "/api/events/" + uuid.NewString() + "/stats", as: org})
	if s := p.must(http.StatusOK, req{method: "GET", path: "/api/events/" + draft + "/stats", as: org}); s.num("sold") != 0 {
		t.Errorf("stats of a draft without types: %s", s.raw)
	}
	p.must(http.StatusNotFound, req{method: "GET", path: "/api/events/" + draft + "/stats", as: rival})

	// Revoke: 204, again 204; the next validation and check-in are refused at once.
	p.must(http.StatusNoContent, req{method: "DELETE", path: staffPath(eventA) + "/" + door.UserID.String(), as: org})
	p.must(http.StatusNoContent, req{method: "DELETE", path: staffPath(eventA) + "/" + door.UserID.String(), as: org})
	p.must(http.StatusNoContent, req{method: "DELETE", path: staffPath(eventA) + "/not-a-user", as: org})
	for _, op := range []string{"validate", "checkin"} {
		if r := p.tickets(req{method: "POST", path: "/api/tickets/" + t2.str("code") + "/" + op, as: door}); r.status != 403 {
			t.Errorf("%s after revocation: %d %s", op, r.status, r.raw)
		}
	}
	p.must(http.StatusNotFound, req{method: "GET", path: "/api/events/" + eventA + "/stats", as: door})
	if got := scan(door); len(got) != 0 {
		t.Errorf("door's events after revocation: %v", got)
	}
	if got := p.must(http.StatusOK, req{method: "GET", path: staffPath(eventA), as: org}).items(); len(got) != 0 {
		t.Errorf("staff after revocation: %v", got)
	}
	if status := scalar[string](p.platform, `SELECT status FROM tickets WHERE code = $1`, t2.str("code")); status != "active" {
		t.Errorf("the revoked member's check-in changed the ticket: %s", status)
	}

	// A cancelled event leaves the scanner list and takes no new staff.
	p.must(http.StatusCreated, req{method: "POST", path: staffPath(eventA), as: org, body: map[string]string{"email": "door-" + suffix + "@example.com"}})
	p.cancelEvent(org, eventA)
	p.waitCancelled(eventA)
	if got := scan(door); len(got) != 0 {
		t.Errorf("door's events after the cancellation: %v", got)
	}
	if got := scan(org); len(got) != 0 {
		t.Errorf("organizer's events after the cancellation: %v", got)
	}
	if r := p.tickets(req{method: "POST", path: staffPath(eventA), as: org, body: map[string]string{"email": "guest-" + suffix + "@example.com"}}); r.status != 409 || r.str("code") != "event_cancelled" {
		t.Errorf("grant on a cancelled event: %d %s", r.status, r.raw)
	}
}

// TestStaffWithoutUserService: a ticket service without SBOR_USER_URL answers a grant 503
// and serves everything else.
func TestStaffWithoutUserService(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org := organizer()
	eventID := p.publishedEvent(org, "No users")
	r := p.tickets(req{method: "POST", path: staffPath(eventID), as: org, body: map[string]string{"email": "door@example.com"}})
	if r.status != http.StatusServiceUnavailable || r.str("code") != "user_service_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("grant without a user service: %d %s", r.status, r.raw)
	}
	p.must(http.StatusOK, req{method: "GET", path: staffPath(eventID), as: org})
}
