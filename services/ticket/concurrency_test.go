package ticket_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/services/ticket"
)

// TestConcurrentPurchases: 200 buyers at once for 50 tickets get exactly 50 tickets; sold is
// 50, never more, and each ticket's ticket.purchased message reaches Kafka, keyed by the
// event.
func TestConcurrentPurchases(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org := organizer()
	ev := p.publishedEvent(org, "Flash sale")
	typ := p.ticketType(org, ev, "standard", 50)

	const buyers = 200
	statuses := make([]int, buyers)
	codes := make([]string, buyers)
	errs := make([]error, buyers)
	parallel(buyers, func(i int) {
		// A 503 (the event service did not answer in time on a loaded machine) means nothing
		// was written; a client retries it, and so does this one.
		as := buyer()
		r, err := p.buy(as, ev, typ, nil)
		for attempt := 0; err == nil && r.status == http.StatusServiceUnavailable && attempt < 20; attempt++ {
			time.Sleep(50 * time.Millisecond)
			r, err = p.buy(as, ev, typ, nil)
		}
		statuses[i], codes[i], errs[i] = r.status, r.str("code"), err
		if err == nil && r.status == http.StatusConflict && r.str("code") != "sold_out" {
			errs[i] = &unexpectedCode{r.str("code")}
		}
	})
	created, soldOut := 0, 0
	unique := map[string]bool{}
	for i := range buyers {
		if errs[i] != nil {
			t.Fatalf("buyer %d: %v", i, errs[i])
		}
		switch statuses[i] {
		case http.StatusCreated:
			created++
			unique[codes[i]] = true
		case http.StatusConflict:
			soldOut++
		default:
			t.Fatalf("buyer %d: status %d", i, statuses[i])
		}
	}
	if created != 50 || soldOut != 150 || len(unique) != 50 {
		t.Fatalf("created %d (%d distinct codes), sold out %d; want 50 and 150", created, len(unique), soldOut)
	}
	if sold := scalar[int](p, `SELECT sold FROM ticket_types WHERE id = $1`, typ); sold != 50 {
		t.Fatalf("sold = %d, want 50", sold)
	}
	if n := scalar[int](p, `SELECT count(*) FROM tickets WHERE ticket_type_id = $1`, typ); n != 50 {
		t.Fatalf("%d tickets, want 50", n)
	}
	r := p.must(http.StatusOK, req{method: "GET", path: "/api/events/" + ev + "/ticket-types"})
	if it := r.items()[0]; it["sold"].(float64) != 50 || it["available"].(float64) != 0 {
		t.Fatalf("type after the sale: %s", r.raw)
	}

	msgs := p.consumeTickets("ticket.purchased", 50)
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.Key != ev || m.Event.Type != "ticket.purchased" || m.Event.Source != ticket.Source ||
			m.Data.EventID.String() != ev || m.Data.TicketTypeID.String() != typ || m.Data.EventTitle != "Flash sale" ||
			m.Data.TicketType != "standard" || m.Data.PurchasedAt.IsZero() {
			t.Fatalf("message: %+v", m)
		}
		seen[m.Data.TicketID.String()] = true
	}
	if len(seen) != 50 {
		t.Fatalf("%d distinct tickets in 50 messages", len(seen))
	}
	if n := scalar[int](p, `SELECT count(*) FROM tickets WHERE id::text <> ALL($1)`, keys(seen)); n != 0 {
		t.Fatalf("%d tickets without their message", n)
	}
}

type unexpectedCode struct{ code string }

func (u *unexpectedCode) Error() string { return "unexpected problem code " + u.code }

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestConcurrentCheckIns: 20 check-ins of one code at once: exactly one succeeds, the others
// are told it is already used, and exactly one ticket.checkin is written.
func TestConcurrentCheckIns(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org := organizer()
	ev := p.publishedEvent(org, "Door")
	typ := p.ticketType(org, ev, "vip", 5)
	tk := p.mustBuy(buyer(), ev, typ)

	const doors = 20
	statuses := make([]int, doors)
	codes := make([]string, doors)
	var mu sync.Mutex
	var failures []error
	parallel(doors, func(i int) {
		r, err := p.call(p.ticket.url, req{method: "POST", path: "/api/tickets/" + tk.str("code") + "/checkin", as: org})
		if err != nil {
			mu.Lock()
			failures = append(failures, err)
			mu.Unlock()
			return
		}
		statuses[i], codes[i] = r.status, r.str("code")
	})
	if len(failures) > 0 {
		t.Fatal(failures[0])
	}
	ok, used := 0, 0
	for i := range doors {
		switch {
		case statuses[i] == http.StatusOK:
			ok++
		case statuses[i] == http.StatusConflict && codes[i] == "already_used":
			used++
		default:
			t.Fatalf("check-in %d: %d %s", i, statuses[i], codes[i])
		}
	}
	if ok != 1 || used != doors-1 {
		t.Fatalf("%d check-ins succeeded and %d were already used; want 1 and %d", ok, used, doors-1)
	}
	if n := scalar[int](p, `SELECT count(*) FROM outbox WHERE topic = 'ticket.checkin'`); n != 1 {
		t.Fatalf("%d ticket.checkin messages, want 1", n)
	}
	msgs := p.consumeTickets("ticket.checkin", 1)
	if msgs[0].Data.TicketID.String() != tk.str("id") || msgs[0].Key != ev || msgs[0].Data.CheckedInAt == nil {
		t.Fatalf("check-in message: %+v", msgs[0])
	}
}

// TestIdempotentPurchase: a retry with the same Idempotency-Key and body gets the same
// answer, marked as replayed, and never a second ticket — also when ten retries race.
func TestIdempotentPurchase(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org, user := organizer(), buyer()
	ev := p.publishedEvent(org, "Retries")
	typ := p.ticketType(org, ev, "standard", 100)
	other := p.ticketType(org, ev, "vip", 100)

	key := map[string]string{"Idempotency-Key": "order-7f3a"}
	first, err := p.buy(user, ev, typ, key)
	if err != nil || first.status != http.StatusCreated || first.header.Get("Idempotency-Replayed") != "" {
		t.Fatalf("first purchase: %v %d %s", err, first.status, first.raw)
	}
	retry, err := p.buy(user, ev, typ, key)
	if err != nil || retry.status != http.StatusCreated || retry.header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("retry: %v %d %v %s", err, retry.status, retry.header, retry.raw)
	}
	if !bytes.Equal(first.raw, retry.raw) {
		t.Fatalf("retry body differs:\n%s\n%s", first.raw, retry.raw)
	}
	// The replay is the purchase as it was answered, even after the ticket changed.
	p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + first.str("code") + "/checkin", as: org})
	if again, _ := p.buy(user, ev, typ, key); !bytes.Equal(again.raw, first.raw) || again.status != http.StatusCreated {
		t.Fatalf("replay after check-in: %d %s", again.status, again.raw)
	}
	if r, _ := p.buy(user, ev, other, key); r.status != http.StatusUnprocessableEntity || r.str("code") != "idempotency_key_reused" {
		t.Fatalf("same key, other type: %d %s", r.status, r.raw)
	}

	// Ten concurrent requests with a fresh key: one ticket, ten identical answers.
	const racers = 10
	raceKey := map[string]string{"Idempotency-Key": "race-1"}
	answers := make([]response, racers)
	errs := make([]error, racers)
	parallel(racers, func(i int) { answers[i], errs[i] = p.buy(user, ev, other, raceKey) })
	replayed := 0
	for i := range racers {
		if errs[i] != nil || answers[i].status != http.StatusCreated {
			t.Fatalf("racer %d: %v %d %s", i, errs[i], answers[i].status, answers[i].raw)
		}
		if !bytes.Equal(answers[i].raw, answers[0].raw) {
			t.Fatalf("racer %d got another ticket:\n%s\n%s", i, answers[i].raw, answers[0].raw)
		}
		if answers[i].header.Get("Idempotency-Replayed") == "true" {
			replayed++
		}
	}
	if replayed != racers-1 {
		t.Fatalf("%d answers marked replayed, want %d", replayed, racers-1)
	}
	if n := scalar[int](p, `SELECT count(*) FROM tickets WHERE user_id = $1`, user.UserID); n != 2 {
		t.Fatalf("user has %d tickets, want 2", n)
	}
	if n := scalar[int](p, `SELECT sum(sold) FROM ticket_types WHERE event_id = $1`, ev); n != 2 {
		t.Fatalf("sold %d, want 2", n)
	}
	if n := scalar[int](p, `SELECT count(*) FROM outbox WHERE topic = 'ticket.purchased'`); n != 2 {
		t.Fatalf("%d ticket.purchased messages, want 2", n)
	}
}
