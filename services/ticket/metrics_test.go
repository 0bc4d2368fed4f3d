package ticket

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// counterDeltas reads counters before and after a test step, so the test can say exactly
// what one step added.
type counterDeltas struct {
	t      *testing.T
	before map[string]float64
}

// businessCounters are every series of the ticket service's business counters, by a
// readable name.
func businessCounters() map[string]prometheus.Counter {
	m := map[string]prometheus.Counter{"types_sold_out": typesSoldOutTotal}
	for _, r := range []string{PurchaseSold, PurchaseReplayed, PurchaseSoldOut, PurchaseRefused, PurchaseInvalid, PurchaseAbandoned, PurchaseError} {
		m["purchase/"+r] = purchasesTotal.WithLabelValues(r)
	}
	for _, r := range []string{CheckInDone, CheckInAlreadyUsed, CheckInCancelled, CheckInInvalid, CheckInForbidden, CheckInError} {
		m["checkin/"+r] = checkInsTotal.WithLabelValues(r)
	}
	return m
}

func snapshotCounters(t *testing.T) *counterDeltas {
	d := &counterDeltas{t: t, before: map[string]float64{}}
	for name, c := range businessCounters() {
		d.before[name] = testutil.ToFloat64(c)
	}
	return d
}

// expect checks that each counter grew by exactly the given amount since the snapshot (0 for
// counters not named), then takes a new snapshot.
func (d *counterDeltas) expect(step string, want map[string]float64) {
	d.t.Helper()
	for name, c := range businessCounters() {
		got := testutil.ToFloat64(c) - d.before[name]
		if got != want[name] {
			d.t.Errorf("%s: %s grew by %v, want %v", step, name, got, want[name])
		}
		d.before[name] = testutil.ToFloat64(c)
	}
	for name := range want {
		if _, ok := businessCounters()[name]; !ok {
			d.t.Fatalf("%s: no counter %q", step, name)
		}
	}
}

// TestBusinessCounters: every purchase and check-in outcome increments exactly its own
// series, and a type that sells out counts once however many buyers it turns away. The
// counters are process-wide, so this test does not run in parallel with the others (Go runs
// the package's sequential tests before any parallel one resumes).
func TestBusinessCounters(t *testing.T) {
	env := newCoreEnv(t)
	// Asked on every purchase, so the cancellation below is seen at once.
	core := env.replica(Options{EventStatusTTL: -1, BatchWait: -1})
	org := newOrganizer()
	ctx := context.Background()
	eventID := env.publishedEvent(org)
	two := env.ticketType(core, org, eventID, "standard", 2)
	many := env.ticketType(core, org, eventID, "vip", 10)
	d := snapshotCounters(t)

	buy := func(tt TicketType, key string) (PurchaseResult, error) {
		return core.Purchase(ctx, newBuyer(), Purchase{EventID: eventID, TicketTypeID: tt.ID, IdempotencyKey: key}, renderJSON)
	}
	var codes []string
	for range 2 {
		res, err := buy(two, "")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, res.Ticket.Code)
	}
	d.expect("two sales", map[string]float64{"purchase/sold": 2})

	// The third buyer finds the type sold out (the statement refuses, the replica learns
	// it); the fourth is turned away by what the replica learned. One type sold out.
	for i := range 2 {
		if _, err := buy(two, ""); codeOf(err) != "sold_out" {
			t.Fatalf("purchase %d after the last ticket: %v, want sold_out", i+3, err)
		}
	}
	d.expect("sold out", map[string]float64{"purchase/sold_out": 2, "types_sold_out": 1})

	// A retry with the same Idempotency-Key and the same buyer is answered with the first
	// ticket.
	keyed := newBuyer()
	p := Purchase{EventID: eventID, TicketTypeID: many.ID, IdempotencyKey: "k-" + uuid.NewString()}
	first, err := core.Purchase(ctx, keyed, p, renderJSON)
	if err != nil {
		t.Fatal(err)
	}
	again, err := core.Purchase(ctx, keyed, p, renderJSON)
	if err != nil || !again.Replayed || again.Ticket.ID != first.Ticket.ID {
		t.Fatalf("retry: replayed %v, ticket %s (first %s), err %v", again.Replayed, again.Ticket.ID, first.Ticket.ID, err)
	}
	d.expect("idempotent retry", map[string]float64{"purchase/sold": 1, "purchase/replayed": 1})

	// The request's own faults: an unknown type and a malformed Idempotency-Key.
	if _, err := core.Purchase(ctx, newBuyer(), Purchase{EventID: eventID, TicketTypeID: uuid.New()}, renderJSON); codeOf(err) != "ticket_type_not_found" {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := buy(many, "bad key\n"); codeOf(err) != "invalid_idempotency_key" {
		t.Fatalf("bad key: %v", err)
	}
	d.expect("invalid purchases", map[string]float64{"purchase/invalid": 2})

	// A caller that went away before its purchase ran.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := core.Purchase(gone, newBuyer(), Purchase{EventID: eventID, TicketTypeID: many.ID}, renderJSON); err == nil {
		t.Fatal("a purchase with a cancelled context succeeded")
	}
	d.expect("abandoned purchase", map[string]float64{"purchase/abandoned": 1})

	// Check-ins: in, again, a malformed code, another organizer.
	if _, err := core.CheckIn(ctx, org, codes[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := core.CheckIn(ctx, org, codes[0]); codeOf(err) != "already_used" {
		t.Fatalf("second check-in: %v", err)
	}
	if _, err := core.CheckIn(ctx, org, "not-a-code"); err == nil {
		t.Fatal("a malformed code checked in")
	}
	if _, err := core.CheckIn(ctx, newOrganizer(), codes[1]); codeOf(err) != "not_owner" {
		t.Fatalf("another organizer's check-in: %v", err)
	}
	d.expect("check-ins", map[string]float64{"checkin/checked_in": 1, "checkin/already_used": 1, "checkin/invalid": 1, "checkin/forbidden": 1})

	// The event is cancelled: purchases are refused, the remaining ticket cannot check in.
	env.cancelEvent(org, eventID)
	if _, err := core.store.CancelEvent(ctx, eventID, org.UserID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := buy(many, ""); codeOf(err) != "event_cancelled" {
		t.Fatalf("purchase of a cancelled event: %v", err)
	}
	if _, err := core.CheckIn(ctx, org, codes[1]); codeOf(err) != "ticket_cancelled" {
		t.Fatalf("check-in of a cancelled ticket: %v", err)
	}
	d.expect("cancelled event", map[string]float64{"purchase/refused": 1, "checkin/cancelled": 1})
}

// TestBusinessCounterResults pins the mapping of errors to results for the outcomes the
// database test cannot provoke on demand (our own failures).
func TestBusinessCounterResults(t *testing.T) {
	t.Parallel()
	unavailable := errs.New(errs.Unavailable, "database_unavailable", "the database is unavailable")
	cases := []struct {
		err      error
		purchase string
		checkIn  string
	}{
		{nil, PurchaseSold, CheckInDone},
		{errSoldOut, PurchaseSoldOut, CheckInInvalid},
		{errOutsideWindow, PurchaseRefused, CheckInInvalid},
		{errBadKey, PurchaseInvalid, CheckInInvalid},
		{context.Canceled, PurchaseAbandoned, CheckInError},
		{errAlreadyUsed, PurchaseRefused, CheckInAlreadyUsed},
		{errTicketCancelled, PurchaseRefused, CheckInCancelled},
		{errTicketNotFound, PurchaseInvalid, CheckInInvalid},
		{errNotOwner, PurchaseInvalid, CheckInForbidden},
		{errCodeCollision, PurchaseError, CheckInError},
		{unavailable, PurchaseError, CheckInError},
		{fmt.Errorf("wrapped: %w", errSoldOut), PurchaseSoldOut, CheckInInvalid},
	}
	for _, c := range cases {
		if got := purchaseResult(PurchaseResult{}, c.err); got != c.purchase {
			t.Errorf("purchase %v: %s, want %s", c.err, got, c.purchase)
		}
		if got := checkInResult(c.err); got != c.checkIn {
			t.Errorf("check-in %v: %s, want %s", c.err, got, c.checkIn)
		}
	}
	if got := purchaseResult(PurchaseResult{Replayed: true}, nil); got != PurchaseReplayed {
		t.Errorf("replay: %s", got)
	}
}
