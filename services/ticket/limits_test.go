package ticket

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
)

// TestMaxPerUserValidate: max_per_user is optional, from 1 to 100 and at most the quantity.
func TestMaxPerUserValidate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		limit    *int
		quantity int
		ok       bool
	}{
		{"absent", nil, 10, true},
		{"one", ptr(1), 10, true},
		{"equal to quantity", ptr(10), 10, true},
		{"a hundred", ptr(100), 1000, true},
		{"zero", ptr(0), 10, false},
		{"negative", ptr(-1), 10, false},
		{"over a hundred", ptr(101), 1000, false},
		{"over quantity", ptr(11), 10, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := NewTicketType{
				Kind: ptr("vip"), PriceCents: ptr(int64(100)), Currency: ptr("EUR"), Quantity: ptr(c.quantity),
				SalesStart: ptr(now.Add(-time.Hour)), SalesEnd: ptr(now.Add(time.Hour)), MaxPerUser: c.limit,
			}.Validate(now)
			if c.ok {
				if err != nil || (c.limit == nil) != (v.MaxPerUser == nil) || (c.limit != nil && *v.MaxPerUser != *c.limit) {
					t.Fatalf("got %+v, %v", v.MaxPerUser, err)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "max_per_user" {
				t.Fatalf("got %v, want a field error on max_per_user", err)
			}
		})
	}
}

// Tests of max_per_user against real PostgreSQL, at the Core level so that a test controls
// how purchases are grouped into batches and how many replicas run them.

func (e *coreEnv) limitedType(core *Core, org identity.Identity, eventID uuid.UUID, kind string, quantity, limit int) TicketType {
	e.t.Helper()
	tt, err := core.CreateTicketType(context.Background(), org, eventID, NewTicketType{
		Kind: ptr(kind), PriceCents: ptr(int64(1000)), Currency: ptr("EUR"), Quantity: ptr(quantity),
		SalesStart: ptr(time.Now().Add(-time.Minute)), SalesEnd: ptr(time.Now().Add(24 * time.Hour)),
		MaxPerUser: ptr(limit),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if tt.MaxPerUser == nil || *tt.MaxPerUser != limit {
		e.t.Fatalf("created type's max_per_user = %v, want %d", tt.MaxPerUser, limit)
	}
	return tt
}

// limitOutcome counts what a set of purchases got.
type limitOutcome struct {
	sold, limited, soldOut atomic.Int64
	other                  atomic.Value
}

func (o *limitOutcome) record(err error) {
	switch {
	case err == nil:
		o.sold.Add(1)
	case codeOf(err) == "purchase_limit_reached":
		o.limited.Add(1)
	case codeOf(err) == "sold_out":
		o.soldOut.Add(1)
	default:
		o.other.Store(err)
	}
}

func (o *limitOutcome) check(t *testing.T, what string, sold, limited, soldOut int64) {
	t.Helper()
	if err, _ := o.other.Load().(error); err != nil {
		t.Fatalf("%s: unexpected failure: %v", what, err)
	}
	if o.sold.Load() != sold || o.limited.Load() != limited || o.soldOut.Load() != soldOut {
		t.Fatalf("%s: %d sold, %d purchase_limit_reached, %d sold_out; want %d, %d, %d",
			what, o.sold.Load(), o.limited.Load(), o.soldOut.Load(), sold, limited, soldOut)
	}
}

// TestPurchaseLimitInOneBatch: 50 purchases by one user at once, gathered into one batch (a
// long batch wait makes sure of it), of a type limited to 3, among 10 purchases of other
// buyers: the user gets exactly 3 tickets and 47 answers purchase_limit_reached; the counters,
// the tickets, the outbox and the per-user row agree.
func TestPurchaseLimitInOneBatch(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	core := env.replica(Options{BatchWait: 300 * time.Millisecond, BatchSize: 128})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.limitedType(core, org, ev, "standard", 100, 3)

	alice := newBuyer()
	var mine, others limitOutcome
	together(60, func(i int) {
		p := Purchase{EventID: ev, TicketTypeID: tt.ID}
		if i < 50 {
			if i%5 == 0 {
				p.IdempotencyKey = "alice-" + uuid.NewString() // keyed purchases count the same
			}
			_, err := core.Purchase(context.Background(), alice, p, renderJSON)
			mine.record(err)
			return
		}
		_, err := core.Purchase(context.Background(), newBuyer(), p, renderJSON)
		others.record(err)
	})
	mine.check(t, "alice", 3, 47, 0)
	others.check(t, "others", 10, 0, 0)
	if s := core.batches.snapshot(); s.Largest < 50 {
		t.Fatalf("batches %+v: want the purchases in one batch", s)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets WHERE user_id = $1`, alice.UserID); n != 3 {
		t.Fatalf("alice holds %d tickets", n)
	}
	if n := env.scalar(`SELECT bought FROM ticket_type_buyers WHERE ticket_type_id = $1 AND user_id = $2`, tt.ID, alice.UserID); n != 3 {
		t.Fatalf("alice's bought = %d", n)
	}
	if n := env.scalar(`SELECT sold FROM ticket_types WHERE id = $1`, tt.ID); n != 13 {
		t.Fatalf("sold = %d, want 13", n)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets`); n != 13 {
		t.Fatalf("%d tickets, want 13", n)
	}
	if n := env.scalar(`SELECT count(*) FROM outbox`); n != 13 {
		t.Fatalf("%d outbox rows, want 13", n)
	}
	// Every Idempotency-Key record names a ticket that exists (a refused keyed purchase left
	// no record that a retry could replay).
	if n := env.scalar(`SELECT count(*) FROM purchase_requests WHERE ticket_id NOT IN (SELECT id FROM tickets)`); n != 0 {
		t.Fatalf("%d Idempotency-Key records without their ticket", n)
	}
}

// TestPurchaseLimitAcrossReplicas: two replicas (Cores with their own pools) on one
// database, batching in groups of 4, get 50 purchases by each of two users at once for a
// type limited to 3: each user ends with exactly 3 tickets, however the purchases were split
// into batches and replicas.
func TestPurchaseLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	replicas := []*Core{env.replica(Options{BatchSize: 4}), env.replica(Options{BatchSize: 4})}
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.limitedType(replicas[0], org, ev, "vip", 1000, 3)

	alice, bob := newBuyer(), newBuyer()
	var a, b limitOutcome
	together(100, func(i int) {
		who, out := alice, &a
		if i%2 == 1 {
			who, out = bob, &b
		}
		_, err := replicas[(i/2)%2].Purchase(context.Background(), who, Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON)
		out.record(err)
	})
	a.check(t, "alice", 3, 47, 0)
	b.check(t, "bob", 3, 47, 0)
	for i, r := range replicas {
		if s := r.batches.snapshot(); s.Batches < 2 {
			t.Fatalf("replica %d ran %d batches: want several", i, s.Batches)
		}
	}
	if n := env.scalar(`SELECT sold FROM ticket_types WHERE id = $1`, tt.ID); n != 6 {
		t.Fatalf("sold = %d, want 6", n)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets`); n != 6 {
		t.Fatalf("%d tickets, want 6", n)
	}
	if n := env.scalar(`SELECT count(*) FROM outbox`); n != 6 {
		t.Fatalf("%d outbox rows, want 6", n)
	}
}

// TestPurchaseLimitAndSellOut: the limit and the quantity together. 3 tickets left, two
// users limited to 2 each try 10 times at once in one batch: 3 are sold, none of either
// user's beyond 2, and the per-user counts equal the tickets held (a purchase withdrawn for
// the sell-out used no quota).
func TestPurchaseLimitAndSellOut(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	core := env.replica(Options{BatchWait: 300 * time.Millisecond})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.limitedType(core, org, ev, "standard", 3, 2)

	alice, bob := newBuyer(), newBuyer()
	var out limitOutcome
	together(20, func(i int) {
		who := alice
		if i%2 == 1 {
			who = bob
		}
		_, err := core.Purchase(context.Background(), who, Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON)
		out.record(err)
	})
	// 4 purchases pass the limit, 3 of them sell; 16 are over the limit.
	out.check(t, "all", 3, 16, 1)
	for _, u := range []identity.Identity{alice, bob} {
		held := env.scalar(`SELECT count(*) FROM tickets WHERE user_id = $1`, u.UserID)
		bought := env.scalar(`SELECT bought FROM ticket_type_buyers WHERE ticket_type_id = $1 AND user_id = $2`, tt.ID, u.UserID)
		if held > 2 || held != bought {
			t.Fatalf("user holds %d tickets, bought = %d", held, bought)
		}
	}
}

// TestPurchaseLimitReplays: at the limit, a retry with a recorded Idempotency-Key is still
// answered with its ticket (a replay uses no quota), a new key is refused, and two requests
// with one key for the last ticket the user may buy end with one ticket and one replay.
func TestPurchaseLimitReplays(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	core := env.replica(Options{BatchWait: 200 * time.Millisecond})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.limitedType(core, org, ev, "standard", 50, 2)
	ctx := context.Background()
	alice := newBuyer()
	buy := func(key string) (PurchaseResult, error) {
		return core.Purchase(ctx, alice, Purchase{EventID: ev, TicketTypeID: tt.ID, IdempotencyKey: key}, renderJSON)
	}

	first, err := buy("k1")
	if err != nil {
		t.Fatal(err)
	}
	// k2 twice at once: one ticket, one replay.
	results := make([]PurchaseResult, 2)
	failures := make([]error, 2)
	together(2, func(i int) { results[i], failures[i] = buy("k2") })
	if failures[0] != nil || failures[1] != nil {
		t.Fatalf("k2: %v / %v", failures[0], failures[1])
	}
	if results[0].Ticket.ID != results[1].Ticket.ID || results[0].Replayed == results[1].Replayed {
		t.Fatalf("k2 twice: %+v / %+v", results[0], results[1])
	}
	// At the limit now.
	if _, err := buy("k3"); codeOf(err) != "purchase_limit_reached" {
		t.Fatalf("k3 at the limit: %v", err)
	}
	for _, key := range []string{"k1", "k2"} {
		res, err := buy(key)
		if err != nil || !res.Replayed {
			t.Fatalf("retry of %s at the limit: %+v, %v", key, res, err)
		}
		if key == "k1" && res.Ticket.ID != first.Ticket.ID {
			t.Fatalf("retry of k1 answered with another ticket")
		}
	}
	// The refused k3 left no record: still refused, not replayed.
	if _, err := buy("k3"); codeOf(err) != "purchase_limit_reached" {
		t.Fatalf("k3 again: %v", err)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets WHERE user_id = $1`, alice.UserID); n != 2 {
		t.Fatalf("alice holds %d tickets", n)
	}
	// Another buyer is not affected by alice's limit, and an unlimited type is not limited.
	if _, err := core.Purchase(ctx, newBuyer(), Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON); err != nil {
		t.Fatal(err)
	}
	free := env.ticketType(core, org, ev, "vip", 10)
	if free.MaxPerUser != nil {
		t.Fatalf("unlimited type has max_per_user %d", *free.MaxPerUser)
	}
	for range 4 {
		if _, err := core.Purchase(ctx, alice, Purchase{EventID: ev, TicketTypeID: free.ID}, renderJSON); err != nil {
			t.Fatal(err)
		}
	}
}
