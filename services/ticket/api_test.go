package ticket_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/services/ticket"
)

// routeCase is one request and the answer it must get.
type routeCase struct {
	name string
	req  req
	// status and, for errors, the problem's code.
	status int
	code   string
	check  func(t *testing.T, r response)
}

func runCases(t *testing.T, p *platform, cases []routeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := p.call(p.ticket.url, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != c.status {
				t.Fatalf("%s %s: got %d, want %d: %s", c.req.method, c.req.path, r.status, c.status, r.raw)
			}
			if c.code != "" && r.str("code") != c.code {
				t.Fatalf("%s %s: code %q, want %q: %s", c.req.method, c.req.path, r.str("code"), c.code, r.raw)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

// withField returns typeBody with one field changed (deleted when v is nil).
func withField(body map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for key, val := range body {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestTicketTypeRoutes(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org, other, user := organizer(), organizer(), buyer()
	published := p.publishedEvent(org, "Concert")
	draft := p.draftEvent(org, "Draft")
	othersDraft := p.draftEvent(other, "Someone else's draft")
	cancelled := p.publishedEvent(org, "Cancelled")
	p.cancelEvent(org, cancelled)
	dup := p.publishedEvent(org, "Duplicate")
	p.ticketType(org, dup, "vip", 10)

	path := "/api/events/" + published + "/ticket-types"
	valid := typeBody("standard", 100)
	eventEnd := time.Now().Add(eventStart + 3*time.Hour).UTC()
	cases := []routeCase{
		{name: "created", req: req{method: "POST", path: path, as: org, body: valid}, status: http.StatusCreated,
			check: func(t *testing.T, r response) {
				if r.str("type") != "standard" || r.num("quantity") != 100 || r.num("sold") != 0 || r.num("available") != 100 ||
					r.str("currency") != "EUR" || r.num("price_cents") != 2500 || r.str("event_id") != published {
					t.Fatalf("created type: %s", r.raw)
				}
				if _, err := uuid.Parse(r.str("id")); err != nil {
					t.Fatalf("id: %v", err)
				}
			}},
		{name: "free early bird", req: req{method: "POST", path: path, as: org,
			body: withField(withField(typeBody("early_bird", 1), "price_cents", 0), "quantity", 1_000_000)}, status: http.StatusCreated},
		{name: "anonymous", req: req{method: "POST", path: path, body: valid}, status: http.StatusUnauthorized, code: "unauthenticated"},
		{name: "plain user", req: req{method: "POST", path: path, as: user, body: typeBody("vip", 5)}, status: http.StatusForbidden, code: "not_owner"},
		{name: "another organizer", req: req{method: "POST", path: path, as: other, body: typeBody("vip", 5)}, status: http.StatusForbidden, code: "not_owner"},
		{name: "another organizer's draft is not revealed", req: req{method: "POST", path: "/api/events/" + othersDraft + "/ticket-types", as: org,
			body: valid}, status: http.StatusNotFound, code: "event_not_found"},
		{name: "unknown event", req: req{method: "POST", path: "/api/events/" + uuid.NewString() + "/ticket-types", as: org, body: valid},
			status: http.StatusNotFound, code: "event_not_found"},
		{name: "malformed event id", req: req{method: "POST", path: "/api/events/nope/ticket-types", as: org, body: valid},
			status: http.StatusNotFound, code: "event_not_found"},
		{name: "draft event", req: req{method: "POST", path: "/api/events/" + draft + "/ticket-types", as: org, body: valid},
			status: http.StatusConflict, code: "event_not_published"},
		{name: "cancelled event", req: req{method: "POST", path: "/api/events/" + cancelled + "/ticket-types", as: org, body: valid},
			status: http.StatusConflict, code: "event_cancelled"},
		{name: "duplicate kind", req: req{method: "POST", path: "/api/events/" + dup + "/ticket-types", as: org, body: typeBody("vip", 3)},
			status: http.StatusConflict, code: "duplicate_ticket_type"},
		{name: "unknown kind", req: req{method: "POST", path: path, as: org, body: withField(valid, "type", "balcony")},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "missing kind", req: req{method: "POST", path: path, as: org, body: withField(valid, "type", nil)},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "negative price", req: req{method: "POST", path: path, as: org, body: withField(valid, "price_cents", -1)},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "fractional price", req: req{method: "POST", path: path, as: org, body: withField(valid, "price_cents", 1.5)},
			status: http.StatusBadRequest, code: "malformed_json"},
		{name: "lower-case currency", req: req{method: "POST", path: path, as: org, body: withField(valid, "currency", "eur")},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "unknown currency", req: req{method: "POST", path: path, as: org, body: withField(valid, "currency", "ABC")},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "missing currency", req: req{method: "POST", path: path, as: org, body: withField(valid, "currency", nil)},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "zero quantity", req: req{method: "POST", path: path, as: org, body: withField(valid, "quantity", 0)},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "quantity over a million", req: req{method: "POST", path: path, as: org, body: withField(valid, "quantity", 1_000_001)},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "window ends before it starts", req: req{method: "POST", path: path, as: org,
			body: withField(valid, "sales_end", time.Now().Add(-2*time.Minute).UTC().Format(time.RFC3339))},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "window already over", req: req{method: "POST", path: path, as: org, body: withField(withField(valid,
			"sales_start", time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339)),
			"sales_end", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "sales end after the event ends", req: req{method: "POST", path: path, as: org,
			body: withField(valid, "sales_end", eventEnd.Add(time.Minute).Format(time.RFC3339))},
			status: http.StatusBadRequest, code: "validation_failed",
			check: func(t *testing.T, r response) {
				if !strings.Contains(string(r.raw), "sales_end") {
					t.Fatalf("no sales_end field error: %s", r.raw)
				}
			}},
		{name: "time not RFC 3339", req: req{method: "POST", path: path, as: org, body: withField(valid, "sales_start", "tomorrow")},
			status: http.StatusBadRequest, code: "malformed_json"},
		{name: "unknown field", req: req{method: "POST", path: path, as: org, body: withField(valid, "sold", 5)},
			status: http.StatusBadRequest, code: "malformed_json"},
		{name: "not JSON", req: req{method: "POST", path: path, as: org, body: "{"}, status: http.StatusBadRequest, code: "malformed_json"},
		{name: "empty body", req: req{method: "POST", path: path, as: org, body: ""}, status: http.StatusBadRequest, code: "empty_body"},
		{name: "wrong media type", req: req{method: "POST", path: path, as: org, body: "type=vip",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
			status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},

		{name: "list", req: req{method: "GET", path: path}, status: http.StatusOK, check: func(t *testing.T, r response) {
			items := r.items()
			if len(items) != 2 || items[0]["type"] != "standard" || items[1]["type"] != "early_bird" {
				t.Fatalf("list: %s", r.raw)
			}
			if items[1]["available"].(float64) != 1_000_000 || items[1]["sold"].(float64) != 0 {
				t.Fatalf("list: %s", r.raw)
			}
		}},
		{name: "list of an event without types", req: req{method: "GET", path: "/api/events/" + uuid.NewString() + "/ticket-types"},
			status: http.StatusOK, check: func(t *testing.T, r response) {
				if len(r.items()) != 0 || !bytes.Contains(r.raw, []byte(`"items":[]`)) {
					t.Fatalf("list: %s", r.raw)
				}
			}},
		{name: "list with malformed event id", req: req{method: "GET", path: "/api/events/x/ticket-types"},
			status: http.StatusNotFound, code: "event_not_found"},
		{name: "wrong method", req: req{method: "DELETE", path: path, as: org}, status: http.StatusMethodNotAllowed},
	}
	runCases(t, p, cases)
}

func TestPurchaseRoutes(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org, user := organizer(), buyer()
	ev := p.publishedEvent(org, "Festival")
	std := p.ticketType(org, ev, "standard", 100)
	one := p.ticketType(org, ev, "vip", 1)
	p.mustBuy(buyer(), ev, one) // sells it out

	// A type whose sales have not started, and one whose sales are over.
	later := p.must(http.StatusCreated, req{method: "POST", path: "/api/events/" + ev + "/ticket-types", as: org,
		body: withField(typeBody("early_bird", 10), "sales_start", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))}).str("id")
	ev2 := p.publishedEvent(org, "Over")
	over := p.ticketType(org, ev2, "standard", 10)
	p.exec(`UPDATE ticket_types SET sales_start = now() - interval '2 hours', sales_end = now() - interval '1 hour' WHERE id = $1`, over)

	// An event the event service reports as not published (unreachable through the API:
	// only published events get types and none goes back to draft; forced in its database).
	ev3 := p.publishedEvent(org, "Unpublished")
	unpub := p.ticketType(org, ev3, "standard", 10)
	if _, err := p.eventPool.Exec(context.Background(), `UPDATE events SET status = 'draft' WHERE id = $1`, ev3); err != nil {
		t.Fatal(err)
	}
	// An event cancelled at the event service whose message has not been handled here yet
	// (or has): either way the purchase is refused.
	ev4 := p.publishedEvent(org, "Called off")
	cancelledType := p.ticketType(org, ev4, "standard", 10)
	p.cancelEvent(org, ev4)

	path := "/api/events/" + ev + "/tickets"
	buy := func(typeID string) map[string]any { return map[string]any{"ticket_type_id": typeID} }
	cases := []routeCase{
		{name: "bought", req: req{method: "POST", path: path, as: user, body: buy(std)}, status: http.StatusCreated,
			check: func(t *testing.T, r response) {
				if r.str("status") != "active" || r.str("event_id") != ev || r.str("ticket_type_id") != std ||
					r.str("user_id") != user.UserID.String() || r.body["checked_in_at"] != nil {
					t.Fatalf("ticket: %s", r.raw)
				}
				if code, err := ticket.ParseCode(r.str("code")); err != nil || code != r.str("code") {
					t.Fatalf("code %q is not canonical", r.str("code"))
				}
				if _, err := time.Parse(time.RFC3339, r.str("purchased_at")); err != nil {
					t.Fatalf("purchased_at: %v", err)
				}
			}},
		{name: "organizer buys too", req: req{method: "POST", path: path, as: org, body: buy(std)}, status: http.StatusCreated},
		{name: "anonymous", req: req{method: "POST", path: path, body: buy(std)}, status: http.StatusUnauthorized, code: "unauthenticated"},
		{name: "malformed event id", req: req{method: "POST", path: "/api/events/123/tickets", as: user, body: buy(std)},
			status: http.StatusNotFound, code: "event_not_found"},
		{name: "type of another event", req: req{method: "POST", path: "/api/events/" + ev2 + "/tickets", as: user, body: buy(std)},
			status: http.StatusNotFound, code: "ticket_type_not_found"},
		{name: "unknown type", req: req{method: "POST", path: path, as: user, body: buy(uuid.NewString())},
			status: http.StatusNotFound, code: "ticket_type_not_found"},
		{name: "missing type id", req: req{method: "POST", path: path, as: user, body: map[string]any{}},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "malformed type id", req: req{method: "POST", path: path, as: user, body: buy("vip")},
			status: http.StatusBadRequest, code: "validation_failed"},
		{name: "unknown field", req: req{method: "POST", path: path, as: user, body: map[string]any{"ticket_type_id": std, "quantity": 2}},
			status: http.StatusBadRequest, code: "malformed_json"},
		{name: "no body", req: req{method: "POST", path: path, as: user}, status: http.StatusBadRequest, code: "empty_body"},
		{name: "sold out", req: req{method: "POST", path: path, as: user, body: buy(one)}, status: http.StatusConflict, code: "sold_out"},
		{name: "sales not started", req: req{method: "POST", path: path, as: user, body: buy(later)},
			status: http.StatusConflict, code: "outside_sales_window"},
		{name: "sales over", req: req{method: "POST", path: "/api/events/" + ev2 + "/tickets", as: user, body: buy(over)},
			status: http.StatusConflict, code: "outside_sales_window"},
		{name: "event not published", req: req{method: "POST", path: "/api/events/" + ev3 + "/tickets", as: user, body: buy(unpub)},
			status: http.StatusConflict, code: "event_not_published"},
		{name: "event cancelled", req: req{method: "POST", path: "/api/events/" + ev4 + "/tickets", as: user, body: buy(cancelledType)},
			status: http.StatusConflict, code: "event_cancelled"},
		{name: "idempotency key too long", req: req{method: "POST", path: path, as: user, body: buy(std),
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 201)}},
			status: http.StatusBadRequest, code: "invalid_idempotency_key"},
		{name: "idempotency key with spaces", req: req{method: "POST", path: path, as: user, body: buy(std),
			header: map[string]string{"Idempotency-Key": "two words"}},
			status: http.StatusBadRequest, code: "invalid_idempotency_key"},
		{name: "idempotency key of 200 characters", req: req{method: "POST", path: path, as: user, body: buy(std),
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 200)}}, status: http.StatusCreated},
		{name: "same key, same body: replayed", req: req{method: "POST", path: path, as: user, body: buy(std),
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 200)}}, status: http.StatusCreated,
			check: func(t *testing.T, r response) {
				if r.header.Get("Idempotency-Replayed") != "true" {
					t.Fatalf("no Idempotency-Replayed header")
				}
			}},
		{name: "same key, another body", req: req{method: "POST", path: path, as: user, body: buy(one),
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 200)}},
			status: http.StatusUnprocessableEntity, code: "idempotency_key_reused"},
		{name: "same key, another user", req: req{method: "POST", path: path, as: buyer(), body: buy(std),
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 200)}}, status: http.StatusCreated,
			check: func(t *testing.T, r response) {
				if r.header.Get("Idempotency-Replayed") != "" {
					t.Fatalf("another user's key was replayed")
				}
			}},
	}
	runCases(t, p, cases)

	// sold never exceeds quantity and matches the tickets.
	if n := scalar[int](p, `SELECT count(*) FROM ticket_types WHERE sold <> (SELECT count(*) FROM tickets WHERE ticket_type_id = ticket_types.id)`); n != 0 {
		t.Fatalf("%d types whose sold differs from their tickets", n)
	}
}

func TestTicketRoutes(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org, other, alice, bob := organizer(), organizer(), buyer(), buyer()
	ev := p.publishedEvent(org, "Play")
	typ := p.ticketType(org, ev, "standard", 100)
	var aliceTickets []response
	for range 3 {
		aliceTickets = append(aliceTickets, p.mustBuy(alice, ev, typ))
	}
	bobTicket := p.mustBuy(bob, ev, typ)
	used := p.mustBuy(bob, ev, typ)
	p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + used.str("code") + "/checkin", as: org})
	emptyEvent := p.publishedEvent(org, "No types yet")
	othersEvent := p.publishedEvent(other, "Other")
	othersDraft := p.draftEvent(other, "Other draft")

	aliceFirst := aliceTickets[0]
	code := aliceFirst.str("code")
	cases := []routeCase{
		// GET /api/tickets
		{name: "my tickets", req: req{method: "GET", path: "/api/tickets", as: alice}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				items := r.items()
				if len(items) != 3 || r.str("next_cursor") != "" {
					t.Fatalf("my tickets: %s", r.raw)
				}
				// Newest first.
				if items[0]["id"] != aliceTickets[2].str("id") || items[2]["id"] != aliceFirst.str("id") {
					t.Fatalf("order: %s", r.raw)
				}
			}},
		{name: "my tickets paged", req: req{method: "GET", path: "/api/tickets?limit=2", as: alice}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if len(r.items()) != 2 || r.str("next_cursor") == "" {
					t.Fatalf("page 1: %s", r.raw)
				}
				next := p.must(http.StatusOK, req{method: "GET", path: "/api/tickets?limit=2&cursor=" + r.str("next_cursor"), as: alice})
				if items := next.items(); len(items) != 1 || items[0]["id"] != aliceFirst.str("id") || next.str("next_cursor") != "" {
					t.Fatalf("page 2: %s", next.raw)
				}
			}},
		{name: "my tickets show the current status", req: req{method: "GET", path: "/api/tickets", as: bob}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				items := r.items()
				if len(items) != 2 || items[0]["status"] != "used" || items[0]["checked_in_at"] == nil || items[1]["status"] != "active" {
					t.Fatalf("bob's tickets: %s", r.raw)
				}
			}},
		{name: "no tickets", req: req{method: "GET", path: "/api/tickets", as: buyer()}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if !bytes.Contains(r.raw, []byte(`"items":[]`)) {
					t.Fatalf("empty list: %s", r.raw)
				}
			}},
		{name: "my tickets anonymous", req: req{method: "GET", path: "/api/tickets"}, status: http.StatusUnauthorized, code: "unauthenticated"},
		{name: "my tickets bad limit", req: req{method: "GET", path: "/api/tickets?limit=101", as: alice}, status: http.StatusBadRequest, code: "invalid_limit"},
		{name: "my tickets zero limit", req: req{method: "GET", path: "/api/tickets?limit=0", as: alice}, status: http.StatusBadRequest, code: "invalid_limit"},
		{name: "my tickets bad cursor", req: req{method: "GET", path: "/api/tickets?cursor=abc", as: alice}, status: http.StatusBadRequest, code: "invalid_cursor"},

		// GET /api/events/{id}/tickets
		{name: "attendee list", req: req{method: "GET", path: "/api/events/" + ev + "/tickets?limit=100", as: org}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				items := r.items()
				if len(items) != 5 || items[0]["id"] != aliceFirst.str("id") || items[3]["id"] != bobTicket.str("id") {
					t.Fatalf("attendees: %s", r.raw)
				}
			}},
		{name: "attendee list paged", req: req{method: "GET", path: "/api/events/" + ev + "/tickets?limit=4", as: org}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				next := p.must(http.StatusOK, req{method: "GET", path: "/api/events/" + ev + "/tickets?limit=4&cursor=" + r.str("next_cursor"), as: org})
				if len(r.items()) != 4 || len(next.items()) != 1 || next.items()[0]["id"] != used.str("id") {
					t.Fatalf("pages: %s then %s", r.raw, next.raw)
				}
			}},
		{name: "attendee list of an event without types", req: req{method: "GET", path: "/api/events/" + emptyEvent + "/tickets", as: org},
			status: http.StatusOK, check: func(t *testing.T, r response) {
				if len(r.items()) != 0 {
					t.Fatalf("attendees: %s", r.raw)
				}
			}},
		{name: "attendee list for another organizer", req: req{method: "GET", path: "/api/events/" + ev + "/tickets", as: other},
			status: http.StatusForbidden, code: "not_owner"},
		{name: "attendee list for a buyer", req: req{method: "GET", path: "/api/events/" + ev + "/tickets", as: alice},
			status: http.StatusForbidden, code: "not_owner"},
		{name: "attendee list of another's event without types", req: req{method: "GET", path: "/api/events/" + othersEvent + "/tickets", as: org},
			status: http.StatusForbidden, code: "not_owner"},
		{name: "attendee list of another's draft", req: req{method: "GET", path: "/api/events/" + othersDraft + "/tickets", as: org},
			status: http.StatusNotFound, code: "event_not_found"},
		{name: "attendee list of an unknown event", req: req{method: "GET", path: "/api/events/" + uuid.NewString() + "/tickets", as: org},
			status: http.StatusNotFound, code: "event_not_found"},
		{name: "attendee list malformed id", req: req{method: "GET", path: "/api/events/zzz/tickets", as: org},
			status: http.StatusNotFound, code: "event_not_found"},
		{name: "attendee list anonymous", req: req{method: "GET", path: "/api/events/" + ev + "/tickets"},
			status: http.StatusUnauthorized, code: "unauthenticated"},
		{name: "attendee list bad cursor", req: req{method: "GET", path: "/api/events/" + ev + "/tickets?cursor=%21", as: org},
			status: http.StatusBadRequest, code: "invalid_cursor"},

		// GET /api/tickets/{id}/qr
		{name: "qr", req: req{method: "GET", path: "/api/tickets/" + aliceFirst.str("id") + "/qr", as: alice}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if r.header.Get("Content-Type") != "image/png" || !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
					t.Fatalf("qr headers: %v", r.header)
				}
				img, err := png.Decode(bytes.NewReader(r.raw))
				if err != nil {
					t.Fatalf("qr is not a PNG: %v", err)
				}
				if b := img.Bounds(); b.Dx() < 200 || b.Dx() != b.Dy() {
					t.Fatalf("qr size %v", b)
				}
			}},
		{name: "qr of another's ticket", req: req{method: "GET", path: "/api/tickets/" + bobTicket.str("id") + "/qr", as: alice},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "qr for the organizer", req: req{method: "GET", path: "/api/tickets/" + bobTicket.str("id") + "/qr", as: org},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "qr of an unknown ticket", req: req{method: "GET", path: "/api/tickets/" + uuid.NewString() + "/qr", as: alice},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "qr malformed id", req: req{method: "GET", path: "/api/tickets/" + code + "/qr", as: alice},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "qr anonymous", req: req{method: "GET", path: "/api/tickets/" + aliceFirst.str("id") + "/qr"},
			status: http.StatusUnauthorized, code: "unauthenticated"},

		// POST /api/tickets/{code}/validate
		{name: "validate", req: req{method: "POST", path: "/api/tickets/" + code + "/validate", as: org}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if r.body["valid"] != true || r.str("status") != "active" || r.str("reason") != "" {
					t.Fatalf("validate: %s", r.raw)
				}
			}},
		{name: "validate forgives case, hyphens and look-alikes", req: req{method: "POST",
			path: "/api/tickets/" + lookAlike(ticket.FormatCode(code)) + "/validate", as: org}, status: http.StatusOK},
		{name: "validate a used ticket", req: req{method: "POST", path: "/api/tickets/" + used.str("code") + "/validate", as: org},
			status: http.StatusOK, check: func(t *testing.T, r response) {
				if r.body["valid"] != false || r.str("status") != "used" || r.str("reason") != "already_used" {
					t.Fatalf("validate used: %s", r.raw)
				}
			}},
		{name: "validate for another organizer", req: req{method: "POST", path: "/api/tickets/" + code + "/validate", as: other},
			status: http.StatusForbidden, code: "not_owner"},
		{name: "validate for the ticket's owner", req: req{method: "POST", path: "/api/tickets/" + code + "/validate", as: alice},
			status: http.StatusForbidden, code: "not_owner"},
		{name: "validate unknown code", req: req{method: "POST", path: "/api/tickets/" + ticket.NewCode() + "/validate", as: org},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "validate malformed code", req: req{method: "POST", path: "/api/tickets/" + strings.Repeat("U", 26) + "/validate", as: org},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "validate anonymous", req: req{method: "POST", path: "/api/tickets/" + code + "/validate"},
			status: http.StatusUnauthorized, code: "unauthenticated"},

		// POST /api/tickets/{code}/checkin
		{name: "checkin for another organizer", req: req{method: "POST", path: "/api/tickets/" + code + "/checkin", as: other},
			status: http.StatusForbidden, code: "not_owner"},
		{name: "checkin", req: req{method: "POST", path: "/api/tickets/" + strings.ToLower(code) + "/checkin", as: org}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if r.str("status") != "used" || r.str("id") != aliceFirst.str("id") || r.str("code") != code {
					t.Fatalf("checkin: %s", r.raw)
				}
				at, err := time.Parse(time.RFC3339, r.str("checked_in_at"))
				if err != nil || time.Since(at) > time.Minute {
					t.Fatalf("checked_in_at %q", r.str("checked_in_at"))
				}
			}},
		{name: "checkin again", req: req{method: "POST", path: "/api/tickets/" + code + "/checkin", as: org},
			status: http.StatusConflict, code: "already_used"},
		{name: "checkin used ticket for another organizer", req: req{method: "POST", path: "/api/tickets/" + code + "/checkin", as: other},
			status: http.StatusForbidden, code: "not_owner"},
		{name: "checkin unknown code", req: req{method: "POST", path: "/api/tickets/" + ticket.NewCode() + "/checkin", as: org},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "checkin malformed code", req: req{method: "POST", path: "/api/tickets/not-a-code/checkin", as: org},
			status: http.StatusNotFound, code: "ticket_not_found"},
		{name: "checkin anonymous", req: req{method: "POST", path: "/api/tickets/" + code + "/checkin"},
			status: http.StatusUnauthorized, code: "unauthenticated"},
	}
	runCases(t, p, cases)

	// Every check-in wrote its ticket.checkin message, keyed by the event.
	msgs := p.consumeTickets("ticket.checkin", 2)
	for _, m := range msgs {
		if m.Key != ev || m.Event.Type != "ticket.checkin" || m.Data.CheckedInAt == nil || m.Data.EventTitle != "Play" {
			t.Fatalf("checkin message: %+v", m)
		}
	}
}

// lookAlike turns a code into what a person might type: lower case, with O for 0 and L for 1.
func lookAlike(code string) string {
	code = strings.ReplaceAll(code, "0", "O")
	code = strings.ReplaceAll(code, "1", "l")
	return strings.ToLower(code)
}

func TestInternalHolders(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org := organizer()
	ev := p.publishedEvent(org, "Holders")
	typ := p.ticketType(org, ev, "standard", 20)
	var bought []response
	for range 7 {
		bought = append(bought, p.mustBuy(buyer(), ev, typ))
	}
	p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + bought[2].str("code") + "/checkin", as: org})
	base := "/internal/events/" + ev + "/tickets"

	// Paging through every status returns each ticket once, in purchase order.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		r := p.must(http.StatusOK, req{method: "GET", path: base + "?limit=3&cursor=" + cursor})
		for _, it := range r.items() {
			seen = append(seen, it["ticket_id"].(string))
			if it["user_id"] == "" || it["status"] == "" {
				t.Fatalf("holder: %v", it)
			}
		}
		if cursor = r.str("next_cursor"); cursor == "" {
			break
		}
	}
	if len(seen) != 7 {
		t.Fatalf("paged %d holders, want 7", len(seen))
	}
	for i, b := range bought {
		if seen[i] != b.str("id") {
			t.Fatalf("holder %d is %s, want %s", i, seen[i], b.str("id"))
		}
	}

	cases := []routeCase{
		{name: "active only", req: req{method: "GET", path: base + "?status=active&limit=500"}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if len(r.items()) != 6 {
					t.Fatalf("active: %s", r.raw)
				}
			}},
		{name: "used only", req: req{method: "GET", path: base + "?status=used"}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if items := r.items(); len(items) != 1 || items[0]["ticket_id"] != bought[2].str("id") || items[0]["status"] != "used" {
					t.Fatalf("used: %s", r.raw)
				}
			}},
		{name: "cancelled only", req: req{method: "GET", path: base + "?status=cancelled"}, status: http.StatusOK,
			check: func(t *testing.T, r response) {
				if len(r.items()) != 0 {
					t.Fatalf("cancelled: %s", r.raw)
				}
			}},
		{name: "unknown event", req: req{method: "GET", path: "/internal/events/" + uuid.NewString() + "/tickets"}, status: http.StatusOK},
		{name: "malformed event id", req: req{method: "GET", path: "/internal/events/x/tickets"}, status: http.StatusNotFound, code: "event_not_found"},
		{name: "unknown status", req: req{method: "GET", path: base + "?status=lost"}, status: http.StatusBadRequest, code: "invalid_status"},
		{name: "limit over 500", req: req{method: "GET", path: base + "?limit=501"}, status: http.StatusBadRequest, code: "invalid_limit"},
		{name: "limit not a number", req: req{method: "GET", path: base + "?limit=ten"}, status: http.StatusBadRequest, code: "invalid_limit"},
		{name: "bad cursor", req: req{method: "GET", path: base + "?cursor=dDE"}, status: http.StatusBadRequest, code: "invalid_cursor"},
	}
	runCases(t, p, cases)
}

// TestEventServiceDown: with the event service gone, what needs it answers 503
// event_service_unavailable with Retry-After (never 500), and what does not keeps working.
//
// A purchase is answered from the event status cache while its entry is fresh, so the
// cache's TTL is short here and the cases run once it has passed.
func TestEventServiceDown(t *testing.T) {
	t.Parallel()
	const ttl = 100 * time.Millisecond
	p := newPlatformWith(t, nil, func(c *ticket.Config) { c.Purchase.EventStatusTTL = ttl })
	org, user := organizer(), buyer()
	ev := p.publishedEvent(org, "Outage")
	typ := p.ticketType(org, ev, "standard", 10)
	other := p.publishedEvent(org, "No types")
	tk := p.mustBuy(user, ev, typ)
	if err := p.event.stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ttl)

	unavailable := func(t *testing.T, r response) {
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("no Retry-After: %v", r.header)
		}
	}
	cases := []routeCase{
		{name: "purchase", req: req{method: "POST", path: "/api/events/" + ev + "/tickets", as: user,
			body: map[string]any{"ticket_type_id": typ}}, status: http.StatusServiceUnavailable, code: "event_service_unavailable", check: unavailable},
		{name: "create type", req: req{method: "POST", path: "/api/events/" + ev + "/ticket-types", as: org, body: typeBody("vip", 5)},
			status: http.StatusServiceUnavailable, code: "event_service_unavailable", check: unavailable},
		{name: "attendees of an event only the event service knows", req: req{method: "GET", path: "/api/events/" + other + "/tickets", as: org},
			status: http.StatusServiceUnavailable, code: "event_service_unavailable", check: unavailable},
		// Decided locally: no call to the event service.
		{name: "attendees", req: req{method: "GET", path: "/api/events/" + ev + "/tickets", as: org}, status: http.StatusOK},
		{name: "types", req: req{method: "GET", path: "/api/events/" + ev + "/ticket-types"}, status: http.StatusOK},
		{name: "validate", req: req{method: "POST", path: "/api/tickets/" + tk.str("code") + "/validate", as: org}, status: http.StatusOK},
		{name: "checkin", req: req{method: "POST", path: "/api/tickets/" + tk.str("code") + "/checkin", as: org}, status: http.StatusOK},
		{name: "my tickets", req: req{method: "GET", path: "/api/tickets", as: user}, status: http.StatusOK},
		{name: "qr", req: req{method: "GET", path: "/api/tickets/" + tk.str("id") + "/qr", as: user}, status: http.StatusOK},
	}
	runCases(t, p, cases)
}
