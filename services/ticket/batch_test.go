package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/event"
)

// Tests of the purchase path's grouping and caches at the Core level, against real
// PostgreSQL and the real event service (in-process, over HTTP): batches are formed in one
// process, so only here can a test make sure one batch holds them all and count what the
// batcher did.

// coreEnv is a real event service and a migrated ticket database.
type coreEnv struct {
	t        testing.TB
	eventURL string
	dbURL    string
	client   *http.Client
}

func newCoreEnv(t testing.TB) *coreEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	eventDB := pgtest.NewDatabase(t)
	done := make(chan error, 1)
	go func() {
		done <- event.Run(ctx, slog.New(slog.DiscardHandler), event.Config{DatabaseURL: eventDB, MaxConns: 4, Migrate: true}, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	env := &coreEnv{t: t, eventURL: "http://" + ln.Addr().String(), dbURL: pgtest.NewDatabase(t),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	waitReady(t, env.client, env.eventURL)
	pool := env.pool(4)
	if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
		t.Fatal(err)
	}
	return env
}

// pool opens a pool of its own on the ticket database, as a replica would.
func (e *coreEnv) pool(maxConns int32) *pgxpool.Pool {
	e.t.Helper()
	pool, err := db.Open(context.Background(), e.dbURL, maxConns)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	return pool
}

// replica is a Core with its own pool and event client, as one ticket-service process.
func (e *coreEnv) replica(opts Options) *Core {
	e.t.Helper()
	events := NewEventClient(e.eventURL, EventTimeout)
	e.t.Cleanup(events.Close)
	return NewCoreWith(NewStore(e.pool(8)), events, opts)
}

// publishedEvent creates and publishes an event of org through the event service.
func (e *coreEnv) publishedEvent(org identity.Identity) uuid.UUID {
	e.t.Helper()
	start := time.Now().Add(30 * 24 * time.Hour).UTC()
	var ev struct{ ID uuid.UUID }
	testCall(e.t, e.client, "POST", e.eventURL+"/api/events", org, map[string]any{
		"title": "Batch", "starts_at": start, "ends_at": start.Add(time.Hour)}, http.StatusCreated, &ev)
	testCall(e.t, e.client, "POST", e.eventURL+"/api/events/"+ev.ID.String()+"/publish", org, nil, http.StatusOK, nil)
	return ev.ID
}

func (e *coreEnv) cancelEvent(org identity.Identity, id uuid.UUID) {
	e.t.Helper()
	testCall(e.t, e.client, "POST", e.eventURL+"/api/events/"+id.String()+"/cancel", org, nil, http.StatusOK, nil)
}

func (e *coreEnv) ticketType(core *Core, org identity.Identity, eventID uuid.UUID, kind string, quantity int) TicketType {
	e.t.Helper()
	tt, err := core.CreateTicketType(context.Background(), org, eventID, NewTicketType{
		Kind: ptr(kind), PriceCents: ptr(int64(1000)), Currency: ptr("EUR"), Quantity: ptr(quantity),
		SalesStart: ptr(time.Now().Add(-time.Minute)), SalesEnd: ptr(time.Now().Add(24 * time.Hour)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return tt
}

func (e *coreEnv) scalar(sql string, args ...any) int {
	e.t.Helper()
	conn, err := pgxpool.New(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// codeOf is the problem code of a business error, "" for anything else.
func codeOf(err error) string {
	if e, ok := errs.As(err); ok {
		return e.Code
	}
	return ""
}

func renderJSON(t Ticket) ([]byte, error) { return json.Marshal(toTicketJSON(t)) }

func newBuyer() identity.Identity {
	return identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
}

func newOrganizer() identity.Identity {
	return identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer}
}

// together runs n calls of f at once, released together, and waits for them.
func together(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			f(i)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
}

// TestBatchStraddlesSoldOut: 40 buyers at once for 7 tickets, gathered into one batch (a
// long batch wait makes sure of it): exactly 7 get a ticket and 33 are told sold_out, the
// counter, the tickets, the outbox and the Idempotency-Key records agree, and the type is
// then known sold out without another statement.
func TestBatchStraddlesSoldOut(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	core := env.replica(Options{BatchWait: 300 * time.Millisecond, BatchSize: 64})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.ticketType(core, org, ev, "standard", 7)

	const buyers = 40
	results := make([]PurchaseResult, buyers)
	failures := make([]error, buyers)
	together(buyers, func(i int) {
		p := Purchase{EventID: ev, TicketTypeID: tt.ID}
		if i%4 == 0 {
			p.IdempotencyKey = "order-" + uuid.NewString() // keyed purchases batch like the others
		}
		results[i], failures[i] = core.Purchase(context.Background(), newBuyer(), p, renderJSON)
	})
	sold, soldOut, keyedSold := 0, 0, 0
	ids := map[uuid.UUID]bool{}
	for i := range buyers {
		switch {
		case failures[i] == nil:
			sold++
			ids[results[i].Ticket.ID] = true
			if i%4 == 0 {
				keyedSold++
			}
		case codeOf(failures[i]) == "sold_out":
			soldOut++
		default:
			t.Fatalf("buyer %d: %v", i, failures[i])
		}
	}
	if sold != 7 || soldOut != 33 || len(ids) != 7 {
		t.Fatalf("%d sold (%d distinct), %d sold out; want 7 and 33", sold, len(ids), soldOut)
	}
	stats := settledStats(t, core.batches)
	if stats.Straddled < 1 || stats.Largest < 8 {
		t.Fatalf("batches %+v: want one that straddled sold-out", stats)
	}
	if n := env.scalar(`SELECT sold FROM ticket_types WHERE id = $1`, tt.ID); n != 7 {
		t.Fatalf("sold = %d", n)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets WHERE ticket_type_id = $1`, tt.ID); n != 7 {
		t.Fatalf("%d tickets", n)
	}
	if n := env.scalar(`SELECT count(*) FROM outbox WHERE topic = 'ticket.purchased'`); n != 7 {
		t.Fatalf("%d outbox rows", n)
	}
	if n := env.scalar(`SELECT count(*) FROM purchase_requests`); n != keyedSold {
		t.Fatalf("%d idempotency records, want %d", n, keyedSold)
	}
	// Every outbox row announces one of the sold tickets.
	if n := env.scalar(`SELECT count(DISTINCT convert_from(payload, 'UTF8')::jsonb #>> '{data,ticket_id}') FROM outbox
		WHERE convert_from(payload, 'UTF8')::jsonb #>> '{data,ticket_id}' IN (SELECT id::text FROM tickets)`); n != 7 {
		t.Fatalf("%d outbox rows match a sold ticket", n)
	}
	// Sold out is now known here: the next buyer is refused without a statement.
	before := settledStats(t, core.batches).Batches
	if _, err := core.Purchase(context.Background(), newBuyer(), Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON); codeOf(err) != "sold_out" {
		t.Fatalf("after the sell-out: %v", err)
	}
	if after := settledStats(t, core.batches).Batches; after != before {
		t.Fatalf("a batch ran for a type known sold out")
	}
}

// TestBatchIdempotencyKeys: inside a batch, two requests with one key end with one ticket
// (one of them answered as a replay), and a key already recorded is answered from its record
// without joining a batch.
func TestBatchIdempotencyKeys(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	core := env.replica(Options{BatchWait: 300 * time.Millisecond})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.ticketType(core, org, ev, "standard", 100)
	other := env.ticketType(core, org, ev, "vip", 100)
	ctx := context.Background()

	alice, bob := newBuyer(), newBuyer()
	first, err := core.Purchase(ctx, bob, Purchase{EventID: ev, TicketTypeID: tt.ID, IdempotencyKey: "bob-1"}, renderJSON)
	if err != nil {
		t.Fatal(err)
	}
	batchesBefore := settledStats(t, core.batches)

	// One batch: alice twice with one key, bob's retry, and eight other buyers.
	const n = 11
	results := make([]PurchaseResult, n)
	failures := make([]error, n)
	together(n, func(i int) {
		switch i {
		case 0, 1:
			results[i], failures[i] = core.Purchase(ctx, alice, Purchase{EventID: ev, TicketTypeID: tt.ID, IdempotencyKey: "alice-1"}, renderJSON)
		case 2:
			results[i], failures[i] = core.Purchase(ctx, bob, Purchase{EventID: ev, TicketTypeID: tt.ID, IdempotencyKey: "bob-1"}, renderJSON)
		default:
			results[i], failures[i] = core.Purchase(ctx, newBuyer(), Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON)
		}
	})
	for i, err := range failures {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if results[0].Ticket.ID != results[1].Ticket.ID || string(results[0].Response) != string(results[1].Response) {
		t.Fatalf("one key, two tickets: %s / %s", results[0].Response, results[1].Response)
	}
	if results[0].Replayed == results[1].Replayed {
		t.Fatalf("exactly one of alice's answers must be a replay: %v %v", results[0].Replayed, results[1].Replayed)
	}
	if !results[2].Replayed || results[2].Ticket.ID != first.Ticket.ID {
		t.Fatalf("bob's retry: %+v", results[2])
	}
	after := settledStats(t, core.batches)
	// Alice's two requests and the eight others were batched; bob's recorded key was not.
	if got := after.Purchases - batchesBefore.Purchases; got != 10 {
		t.Fatalf("%d purchases went through batches, want 10", got)
	}
	if n := env.scalar(`SELECT sold FROM ticket_types WHERE id = $1`, tt.ID); n != 10 {
		t.Fatalf("sold %d, want 10 (bob, alice and eight others)", n)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets`); n != 10 {
		t.Fatalf("%d tickets, want 10", n)
	}
	if n := env.scalar(`SELECT count(*) FROM outbox`); n != 10 {
		t.Fatalf("%d outbox rows, want 10", n)
	}
	// The same key for another type is refused, before any batch.
	if _, err := core.Purchase(ctx, alice, Purchase{EventID: ev, TicketTypeID: other.ID, IdempotencyKey: "alice-1"}, renderJSON); codeOf(err) != "idempotency_key_reused" {
		t.Fatalf("key reused for another type: %v", err)
	}
}

// TestReplicasRace: two replicas (Cores with their own pools) on one database sell 30
// tickets to 200 buyers at once, each grouping its own purchases: exactly 30 are sold.
func TestReplicasRace(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	replicas := []*Core{env.replica(Options{}), env.replica(Options{})}
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.ticketType(replicas[0], org, ev, "standard", 30)

	const buyers = 200
	var sold, soldOut atomic.Int64
	var failure atomic.Value
	together(buyers, func(i int) {
		_, err := replicas[i%2].Purchase(context.Background(), newBuyer(), Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON)
		switch {
		case err == nil:
			sold.Add(1)
		case codeOf(err) == "sold_out":
			soldOut.Add(1)
		default:
			failure.Store(err)
		}
	})
	if err, _ := failure.Load().(error); err != nil {
		t.Fatal(err)
	}
	if sold.Load() != 30 || soldOut.Load() != buyers-30 {
		t.Fatalf("%d sold, %d sold out", sold.Load(), soldOut.Load())
	}
	if n := env.scalar(`SELECT sold FROM ticket_types WHERE id = $1`, tt.ID); n != 30 {
		t.Fatalf("sold = %d", n)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets`); n != 30 {
		t.Fatalf("%d tickets", n)
	}
	if n := env.scalar(`SELECT count(*) FROM outbox`); n != 30 {
		t.Fatalf("%d outbox rows", n)
	}
	for i, r := range replicas {
		if s := settledStats(t, r.batches); s.Batches == 0 {
			t.Fatalf("replica %d ran no batch: %+v", i, s)
		}
	}
}

// TestEventStatusCacheWindow pins down the window the event status cache opens (see the
// package documentation): after a cancellation commits in the event service, a replica whose
// cache says "published" may still sell until the cancellation is recorded here or its TTL
// passes, whichever comes first; once recorded, no replica sells, whatever its cache says,
// and the tickets sold in the window are cancelled with the others.
func TestEventStatusCacheWindow(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	// Two replicas that would trust "published" for an hour; a's consumer records the
	// cancellation, b never receives it.
	a, b := env.replica(Options{EventStatusTTL: time.Hour}), env.replica(Options{EventStatusTTL: time.Hour})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.ticketType(a, org, ev, "standard", 100)
	ctx := context.Background()
	buy := func(c *Core) (PurchaseResult, error) {
		return c.Purchase(ctx, newBuyer(), Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON)
	}
	for _, c := range []*Core{a, b} {
		if _, err := buy(c); err != nil { // fills the caches: published
			t.Fatal(err)
		}
	}

	env.cancelEvent(org, ev)
	// The window: committed in the event service, not yet recorded here.
	inWindow, err := buy(a)
	if err != nil {
		t.Fatalf("inside the window (cached published, cancellation not recorded): %v", err)
	}

	// The cancellation reaches the ticket service: a's consumer handles event.cancelled.
	msg, err := cloudevent.New(event.Source, cloudevent.TypeEventCancelled, ev.String(), time.Now(),
		cloudevent.EventData{EventID: ev, OrganizerID: org.UserID, Status: EventCancelled})
	if err != nil {
		t.Fatal(err)
	}
	value, _ := json.Marshal(msg)
	handler := cancellationHandler(a.store, slog.New(slog.DiscardHandler), a.EventCancelled)
	if err := handler(ctx, kafka.Message{Topic: cloudevent.TypeEventCancelled, Key: []byte(ev.String()), Value: value}); err != nil {
		t.Fatal(err)
	}

	// From now on nobody sells: a knows it from its consumer, b (cache: published for the
	// next hour) is refused by the purchase statement and learns it.
	for name, c := range map[string]*Core{"a": a, "b": b} {
		for range 2 {
			if _, err := buy(c); codeOf(err) != "event_cancelled" {
				t.Fatalf("replica %s after the cancellation was recorded: %v", name, err)
			}
		}
	}
	if s := settledStats(t, b.batches); s.Batches != 2 {
		t.Fatalf("replica b ran %d batches, want 2 (its first purchase and the refused one; then it knows)", s.Batches)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets WHERE event_id = $1 AND status = 'active'`, ev); n != 0 {
		t.Fatalf("%d active tickets after the cancellation was recorded", n)
	}
	if n := env.scalar(`SELECT count(*) FROM tickets WHERE id = $1 AND status = 'cancelled'`, inWindow.Ticket.ID); n != 1 {
		t.Fatal("the ticket sold inside the window was not cancelled")
	}

	// Without any message, the TTL bounds the window: once it has passed since the status was
	// fetched, the event service is asked again and refuses.
	var offset atomic.Int64
	c := env.replica(Options{EventStatusTTL: time.Minute})
	c.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ev2 := env.publishedEvent(org)
	tt2 := env.ticketType(c, org, ev2, "standard", 100)
	buy2 := func() error {
		_, err := c.Purchase(ctx, newBuyer(), Purchase{EventID: ev2, TicketTypeID: tt2.ID}, renderJSON)
		return err
	}
	if err := buy2(); err != nil {
		t.Fatal(err)
	}
	env.cancelEvent(org, ev2)
	offset.Store(int64(59 * time.Second))
	if err := buy2(); err != nil {
		t.Fatalf("59s after the fetch, inside the TTL: %v", err)
	}
	offset.Store(int64(61 * time.Second))
	if err := buy2(); codeOf(err) != "event_cancelled" {
		t.Fatalf("61s after the fetch, past the TTL: %v", err)
	}
}

// TestEventStatusCacheShared: a burst of purchases of an event nobody asked about yet makes
// one call to the event service, not one each.
func TestEventStatusCacheShared(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	var calls atomic.Int64
	events := countingEvents{Events: NewEventClient(env.eventURL, EventTimeout), calls: &calls}
	core := NewCoreWith(NewStore(env.pool(8)), events, Options{})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.ticketType(core, org, ev, "standard", 1000)
	calls.Store(0)
	var failure atomic.Value
	together(50, func(int) {
		if _, err := core.Purchase(context.Background(), newBuyer(), Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON); err != nil {
			failure.Store(err)
		}
	})
	if err, _ := failure.Load().(error); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls to the event service for 50 purchases, want 1", n)
	}
}

// countingEvents counts the calls to the real event client.
type countingEvents struct {
	Events
	calls *atomic.Int64
}

func (c countingEvents) Event(ctx context.Context, id uuid.UUID) (EventInfo, error) {
	c.calls.Add(1)
	return c.Events.Event(ctx, id)
}

// TestBatcherAnswersLeavers: a purchase whose request went away before its batch left is
// not made.
func TestBatcherAnswersLeavers(t *testing.T) {
	t.Parallel()
	env := newCoreEnv(t)
	core := env.replica(Options{BatchWait: 200 * time.Millisecond})
	org := newOrganizer()
	ev := env.publishedEvent(org)
	tt := env.ticketType(core, org, ev, "standard", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := core.Purchase(ctx, newBuyer(), Purchase{EventID: ev, TicketTypeID: tt.ID}, renderJSON)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the request's deadline", err)
	}
	time.Sleep(400 * time.Millisecond) // the batch has left by now
	if n := env.scalar(`SELECT count(*) FROM tickets`); n != 0 {
		t.Fatalf("%d tickets for a request that went away", n)
	}
}

// settledStats returns a batcher's counts once no batch is running. A batch answers its
// purchases before it records itself, so a purchase that has returned does not mean its
// batch is counted yet; an idle batcher (no queue left) has counted everything.
func settledStats(t *testing.T, b *batcher) batchStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		idle, stats := len(b.queues) == 0, b.stats
		b.mu.Unlock()
		if idle {
			return stats
		}
		if time.Now().After(deadline) {
			t.Fatal("the batcher is still running batches after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
