package ticket_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/ticket"
	"github.com/sbor-dev/sbor/services/user"
)

// transferPlatform is the event and ticket services of newPlatform plus a real user service,
// which resolves the recipients' emails.
type transferPlatform struct {
	*platform
	userURL string
}

func newTransferPlatform(t *testing.T) *transferPlatform {
	t.Helper()
	userDB := pgtest.NewDatabase(t)
	users := start(t, "user", func(ctx context.Context, ln net.Listener) error {
		return user.Run(ctx, testLogger(), user.Config{DatabaseURL: userDB, MaxConns: 4, Migrate: true}, ln)
	})
	p := newPlatformWith(t, nil, func(cfg *ticket.Config) { cfg.UserURL = users.url })
	return &transferPlatform{platform: p, userURL: users.url}
}

// register creates an account in the user service and returns its identity and email.
func (p *transferPlatform) register(name string) (*identity.Identity, string) {
	p.t.Helper()
	email := strings.ToLower(name) + "-" + uuid.NewString()[:8] + "@example.com"
	resp, err := p.call(p.userURL, req{method: "POST", path: "/api/auth/register",
		body: map[string]any{"email": email, "name": name, "password": "correct horse 42 battery"}})
	if err != nil || resp.status != http.StatusCreated {
		p.t.Fatalf("register %s: %v %d %s", name, err, resp.status, resp.raw)
	}
	id, err := uuid.Parse(resp.str("id"))
	if err != nil {
		p.t.Fatalf("register %s: id %q", name, resp.str("id"))
	}
	return &identity.Identity{UserID: id, Role: identity.RoleUser}, email
}

func (p *transferPlatform) transfer(as *identity.Identity, ticketID string, body any) response {
	p.t.Helper()
	return p.tickets(req{method: "POST", path: "/api/tickets/" + ticketID + "/transfer", as: as, body: body})
}

// myTickets lists the caller's tickets (one page is enough in these tests).
func (p *transferPlatform) myTickets(as *identity.Identity) []map[string]any {
	p.t.Helper()
	return p.must(http.StatusOK, req{method: "GET", path: "/api/tickets", as: as}).items()
}

// TestTransfer: the holder gives a ticket to another user by email. The old ticket becomes
// transferred and revoked, its plain code no longer validates or checks in (reason
// transferred); the recipient holds a new ticket of the same type, with a new id and code,
// that checks in; the type's sold count is unchanged and ticket.transferred reaches Kafka,
// keyed by the event. Every refusal answers as the contract says.
func TestTransfer(t *testing.T) {
	t.Parallel()
	p := newTransferPlatform(t)
	org := organizer()
	ev := p.publishedEvent(org, "Transfer night")
	typ := p.ticketType(org, ev, "vip", 10)
	alice, aliceEmail := p.register("Alice")
	bob, bobEmail := p.register("Bob")
	bought := p.mustBuy(alice, ev, typ)
	oldID, oldCode := bought.str("id"), bought.str("code")

	refusals := []struct {
		name   string
		as     *identity.Identity
		ticket string
		body   any
		status int
		code   string
	}{
		{"someone else's ticket", bob, oldID, map[string]any{"email": aliceEmail}, 404, "ticket_not_found"},
		{"unknown ticket", alice, uuid.NewString(), map[string]any{"email": bobEmail}, 404, "ticket_not_found"},
		{"malformed ticket id", alice, "not-a-uuid", map[string]any{"email": bobEmail}, 404, "ticket_not_found"},
		{"no email", alice, oldID, map[string]any{}, 400, ""},
		{"email not a string", alice, oldID, map[string]any{"email": 42}, 400, ""},
		{"not an email", alice, oldID, map[string]any{"email": "bob"}, 400, ""},
		{"unknown field", alice, oldID, map[string]any{"email": bobEmail, "to": "x"}, 400, ""},
		{"unknown email", alice, oldID, map[string]any{"email": "nobody-" + uuid.NewString() + "@example.com"}, 422, "user_not_found"},
		{"own email", alice, oldID, map[string]any{"email": aliceEmail}, 422, "cannot_transfer_to_self"},
		{"own email, other case", alice, oldID, map[string]any{"email": " " + strings.ToUpper(aliceEmail) + " "}, 422, "cannot_transfer_to_self"},
		{"anonymous", nil, oldID, map[string]any{"email": bobEmail}, 401, ""},
	}
	for _, c := range refusals {
		r := p.transfer(c.as, c.ticket, c.body)
		if r.status != c.status || (c.code != "" && r.str("code") != c.code) {
			t.Errorf("%s: got %d %s, want %d %s", c.name, r.status, r.raw, c.status, c.code)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	r := p.transfer(alice, oldID, map[string]any{"email": strings.ToUpper(bobEmail)})
	if r.status != http.StatusOK || r.str("id") != oldID || r.str("status") != "transferred" || r.str("code") != oldCode ||
		r.str("user_id") != alice.UserID.String() {
		t.Fatalf("transfer: %d %s", r.status, r.raw)
	}
	// A second transfer of the same ticket, by anyone, is refused.
	if r := p.transfer(alice, oldID, map[string]any{"email": bobEmail}); r.status != http.StatusConflict || r.str("code") != "ticket_not_active" {
		t.Fatalf("second transfer: %d %s", r.status, r.raw)
	}

	bobs := p.myTickets(bob)
	if len(bobs) != 1 {
		t.Fatalf("bob holds %d tickets", len(bobs))
	}
	next := bobs[0]
	if next["id"] == oldID || next["code"] == oldCode || next["status"] != "active" || next["ticket_type_id"] != typ ||
		next["event_id"] != ev || next["user_id"] != bob.UserID.String() {
		t.Fatalf("bob's ticket: %v", next)
	}
	alices := p.myTickets(alice)
	if len(alices) != 1 || alices[0]["id"] != oldID || alices[0]["status"] != "transferred" {
		t.Fatalf("alice's tickets: %v", alices)
	}
	types := p.must(http.StatusOK, req{method: "GET", path: "/api/events/" + ev + "/ticket-types"}).items()
	if types[0]["sold"].(float64) != 1 || types[0]["available"].(float64) != 9 {
		t.Fatalf("type after the transfer: %v", types[0])
	}
	// The old ticket is revoked, and the new one names it.
	if n := scalar[int](p.platform, `SELECT count(*) FROM tickets WHERE id = $1 AND revoked_at IS NOT NULL AND revocation_seq IS NOT NULL
		AND transferred_at IS NOT NULL`, oldID); n != 1 {
		t.Fatalf("old ticket not revoked")
	}
	if from := scalar[string](p.platform, `SELECT transferred_from::text FROM tickets WHERE id = $1`, next["id"]); from != oldID {
		t.Fatalf("new ticket's transferred_from = %s", from)
	}
	// Offline scanners learn it from the event's revocation list.
	revoked := p.must(http.StatusOK, req{method: "GET", path: "/api/events/" + ev + "/revocations?since=0", as: org}).items()
	if len(revoked) != 1 || revoked[0]["ticket_id"] != oldID || revoked[0]["reason"] != "transferred" {
		t.Fatalf("revocations: %v", revoked)
	}

	// The old code is dead at the door; the new one works.
	v := p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + oldCode + "/validate", as: org})
	if v.body["valid"] != false || v.str("status") != "transferred" || v.str("reason") != "transferred" {
		t.Fatalf("validate old code: %s", v.raw)
	}
	if r := p.tickets(req{method: "POST", path: "/api/tickets/" + oldCode + "/checkin", as: org}); r.status != http.StatusConflict ||
		r.str("code") != "ticket_transferred" {
		t.Fatalf("check-in old code: %d %s", r.status, r.raw)
	}
	newCode := next["code"].(string)
	if v := p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + newCode + "/validate", as: org}); v.body["valid"] != true {
		t.Fatalf("validate new code: %s", v.raw)
	}
	p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + newCode + "/checkin", as: org})
	// A used ticket cannot be transferred.
	if r := p.transfer(bob, next["id"].(string), map[string]any{"email": aliceEmail}); r.status != http.StatusConflict ||
		r.str("code") != "ticket_not_active" {
		t.Fatalf("transfer of a used ticket: %d %s", r.status, r.raw)
	}

	msgs := p.consumeTickets(cloudevent.TypeTicketTransferred, 1)
	m := msgs[0]
	var d cloudevent.TicketTransferData
	if err := m.Event.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if m.Key != ev || m.Event.Type != cloudevent.TypeTicketTransferred || m.Event.Source != ticket.Source ||
		d.TicketID.String() != oldID || d.NewTicketID.String() != next["id"] || d.FromUserID != alice.UserID ||
		d.ToUserID != bob.UserID || d.UserID != alice.UserID || d.EventID.String() != ev || d.TicketTypeID.String() != typ ||
		d.EventTitle != "Transfer night" || d.TicketType != "vip" || d.TransferredAt.IsZero() {
		t.Fatalf("ticket.transferred: key %s %+v", m.Key, d)
	}
}

// TestTransferRefusedForCancelledEvent: once the event is cancelled, its tickets cannot be
// transferred (409 event_cancelled), and no new ticket appears.
func TestTransferRefusedForCancelledEvent(t *testing.T) {
	t.Parallel()
	p := newTransferPlatform(t)
	org := organizer()
	ev := p.publishedEvent(org, "Called off")
	typ := p.ticketType(org, ev, "standard", 10)
	alice, _ := p.register("Alice")
	_, bobEmail := p.register("Bob")
	id := p.mustBuy(alice, ev, typ).str("id")
	p.cancelEvent(org, ev)
	// Refused as soon as the event service says so, and after the ticket service recorded it.
	if r := p.transfer(alice, id, map[string]any{"email": bobEmail}); r.status != http.StatusConflict || r.str("code") != "event_cancelled" {
		t.Fatalf("transfer right after the cancellation: %d %s", r.status, r.raw)
	}
	p.waitCancelled(ev)
	if r := p.transfer(alice, id, map[string]any{"email": bobEmail}); r.status != http.StatusConflict || r.str("code") != "event_cancelled" {
		t.Fatalf("transfer after the cancellation was recorded: %d %s", r.status, r.raw)
	}
	if n := scalar[int](p.platform, `SELECT count(*) FROM tickets`); n != 1 {
		t.Fatalf("%d tickets, want 1", n)
	}
}

// TestConcurrentTransfers: 20 transfers of one ticket at once, to five different recipients:
// exactly one succeeds, the others are told ticket_not_active, and there is exactly one new
// ticket and one ticket.transferred message.
func TestConcurrentTransfers(t *testing.T) {
	t.Parallel()
	p := newTransferPlatform(t)
	org := organizer()
	ev := p.publishedEvent(org, "Race")
	typ := p.ticketType(org, ev, "standard", 10)
	alice, _ := p.register("Alice")
	emails := make([]string, 5)
	for i := range emails {
		_, emails[i] = p.register("Friend")
	}
	id := p.mustBuy(alice, ev, typ).str("id")

	const n = 20
	statuses := make([]int, n)
	codes := make([]string, n)
	failures := make([]error, n)
	parallel(n, func(i int) {
		r, err := p.call(p.ticket.url, req{method: "POST", path: "/api/tickets/" + id + "/transfer", as: alice,
			body: map[string]any{"email": emails[i%len(emails)]}})
		statuses[i], codes[i], failures[i] = r.status, r.str("code"), err
	})
	ok := 0
	for i := range n {
		switch {
		case failures[i] != nil:
			t.Fatalf("transfer %d: %v", i, failures[i])
		case statuses[i] == http.StatusOK:
			ok++
		case statuses[i] != http.StatusConflict || codes[i] != "ticket_not_active":
			t.Fatalf("transfer %d: %d %s", i, statuses[i], codes[i])
		}
	}
	if ok != 1 {
		t.Fatalf("%d transfers succeeded, want 1", ok)
	}
	if c := scalar[int](p.platform, `SELECT count(*) FROM tickets WHERE transferred_from = $1`, id); c != 1 {
		t.Fatalf("%d successors of the ticket, want 1", c)
	}
	if c := scalar[int](p.platform, `SELECT count(*) FROM outbox WHERE topic = 'ticket.transferred'`); c != 1 {
		t.Fatalf("%d ticket.transferred messages, want 1", c)
	}
	if c := scalar[int](p.platform, `SELECT sold FROM ticket_types WHERE id = $1`, typ); c != 1 {
		t.Fatalf("sold = %d, want 1", c)
	}
}

// TestTransferKeepsPurchaseLimit: max_per_user counts purchases, and a transfer neither
// frees nor uses quota. Alice, limited to one, transfers her ticket and still cannot buy
// another; Bob, who received one, can still buy his own.
func TestTransferKeepsPurchaseLimit(t *testing.T) {
	t.Parallel()
	p := newTransferPlatform(t)
	org := organizer()
	ev := p.publishedEvent(org, "Limited")
	body := typeBody("standard", 10)
	body["max_per_user"] = 1
	tt := p.must(http.StatusCreated, req{method: "POST", path: "/api/events/" + ev + "/ticket-types", as: org, body: body})
	if tt.num("max_per_user") != 1 {
		t.Fatalf("created type: %s", tt.raw)
	}
	typ := tt.str("id")
	alice, _ := p.register("Alice")
	bob, bobEmail := p.register("Bob")
	id := p.mustBuy(alice, ev, typ).str("id")
	if r, err := p.buy(alice, ev, typ, nil); err != nil || r.status != http.StatusConflict || r.str("code") != "purchase_limit_reached" {
		t.Fatalf("alice's second purchase: %v %d %s", err, r.status, r.raw)
	}
	p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + id + "/transfer", as: alice, body: map[string]any{"email": bobEmail}})
	if r, err := p.buy(alice, ev, typ, nil); err != nil || r.status != http.StatusConflict || r.str("code") != "purchase_limit_reached" {
		t.Fatalf("alice's purchase after giving hers away: %v %d %s", err, r.status, r.raw)
	}
	p.mustBuy(bob, ev, typ)
	if r, err := p.buy(bob, ev, typ, nil); err != nil || r.status != http.StatusConflict || r.str("code") != "purchase_limit_reached" {
		t.Fatalf("bob's second purchase: %v %d %s", err, r.status, r.raw)
	}
	if n := len(p.myTickets(bob)); n != 2 {
		t.Fatalf("bob holds %d tickets, want the one received and the one bought", n)
	}
}
