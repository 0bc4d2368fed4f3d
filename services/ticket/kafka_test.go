package ticket_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit/kafkaserver"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
)

// TestEventCancelled: the event.cancelled message from the real event service cancels the
// event's active tickets (a used one stays used); a redelivery, poison messages and a
// duplicate change nothing; purchases and new types are refused from then on, even with the
// event service down; the door sees the tickets as cancelled.
func TestEventCancelled(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org, alice, bob := organizer(), buyer(), buyer()
	ev := p.publishedEvent(org, "Rained out")
	typ := p.ticketType(org, ev, "standard", 10)
	a1 := p.mustBuy(alice, ev, typ)
	a2 := p.mustBuy(alice, ev, typ)
	b1 := p.mustBuy(bob, ev, typ)
	p.must(http.StatusOK, req{method: "POST", path: "/api/tickets/" + b1.str("code") + "/checkin", as: org})

	p.cancelEvent(org, ev)
	p.waitCancelled(ev)
	type state struct {
		Status      string
		CancelledAt *time.Time
	}
	snapshot := func() map[string]state {
		rows, err := p.pool.Query(context.Background(), `SELECT id::text, status, cancelled_at FROM tickets WHERE event_id = $1`, ev)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]state{}
		for rows.Next() {
			var id string
			var s state
			if err := rows.Scan(&id, &s.Status, &s.CancelledAt); err != nil {
				t.Fatal(err)
			}
			out[id] = s
		}
		return out
	}
	before := snapshot()
	if before[a1.str("id")].Status != "cancelled" || before[a2.str("id")].Status != "cancelled" || before[b1.str("id")].Status != "used" {
		t.Fatalf("after the cancellation: %+v", before)
	}
	recordedAt := scalar[time.Time](p, `SELECT recorded_at FROM cancelled_events WHERE event_id = $1`, ev)

	// Deliver the same message again, then poison messages, then a marker with the same key
	// (so the same partition, handled after them): once the marker is recorded, everything
	// before it was handled.
	msgs := kafkatest.Consume(t, p.brokers, p.prefix+cloudevent.TypeEventCancelled, 1, 30*time.Second)
	original := msgs[0]
	if string(original.Key) != ev {
		t.Fatalf("event.cancelled keyed %q, want the event id", original.Key)
	}
	marker := uuid.New()
	markerEvent, err := cloudevent.New("test", cloudevent.TypeEventCancelled, marker.String(), time.Now(),
		cloudevent.EventData{EventID: marker, OrganizerID: org.UserID, Title: "Marker", Status: "cancelled", Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	wrongType, _ := cloudevent.New("test", cloudevent.TypeEventPublished, ev, time.Now(), cloudevent.EventData{EventID: uuid.New(), OrganizerID: org.UserID})
	noEventID, _ := cloudevent.New("test", cloudevent.TypeEventCancelled, ev, time.Now(), map[string]any{"title": "?"})
	notCancelled, _ := cloudevent.New("test", cloudevent.TypeEventCancelled, ev, time.Now(),
		cloudevent.EventData{EventID: uuid.New(), OrganizerID: org.UserID, Status: "published"})
	produce(t, p.brokers, p.prefix+cloudevent.TypeEventCancelled, []byte(ev),
		original.Value, []byte("not json"), []byte(`{"specversion":"1.0"}`),
		mustJSON(t, wrongType), mustJSON(t, noEventID), mustJSON(t, notCancelled), original.Value, mustJSON(t, markerEvent))
	p.waitCancelled(marker.String())

	after := snapshot()
	for id, s := range before {
		a := after[id]
		if a.Status != s.Status || (s.CancelledAt == nil) != (a.CancelledAt == nil) || (s.CancelledAt != nil && !s.CancelledAt.Equal(*a.CancelledAt)) {
			t.Fatalf("ticket %s changed on redelivery: %+v → %+v", id, s, a)
		}
	}
	if again := scalar[time.Time](p, `SELECT recorded_at FROM cancelled_events WHERE event_id = $1`, ev); !again.Equal(recordedAt) {
		t.Fatalf("cancellation recorded again: %v → %v", recordedAt, again)
	}
	if n := scalar[int](p, `SELECT count(*) FROM cancelled_events`); n != 2 {
		t.Fatalf("%d cancelled events recorded, want 2 (the event and the marker)", n)
	}

	check := func(name string) {
		t.Run(name, func(t *testing.T) {
			runCases(t, p, []routeCase{
				{name: "purchase", req: req{method: "POST", path: "/api/events/" + ev + "/tickets", as: buyer(),
					body: map[string]any{"ticket_type_id": typ}}, status: http.StatusConflict, code: "event_cancelled"},
				{name: "purchase with a fresh Idempotency-Key", req: req{method: "POST", path: "/api/events/" + ev + "/tickets", as: alice,
					body: map[string]any{"ticket_type_id": typ}, header: map[string]string{"Idempotency-Key": "never-used"}},
					status: http.StatusConflict, code: "event_cancelled"},
				{name: "new type", req: req{method: "POST", path: "/api/events/" + ev + "/ticket-types", as: org, body: typeBody("vip", 5)},
					status: http.StatusConflict, code: "event_cancelled"},
				{name: "new type by another organizer", req: req{method: "POST", path: "/api/events/" + ev + "/ticket-types", as: organizer(),
					body: typeBody("vip", 5)}, status: http.StatusForbidden, code: "not_owner"},
				{name: "validate", req: req{method: "POST", path: "/api/tickets/" + a1.str("code") + "/validate", as: org}, status: http.StatusOK,
					check: func(t *testing.T, r response) {
						if r.body["valid"] != false || r.str("status") != "cancelled" || r.str("reason") != "ticket_cancelled" {
							t.Fatalf("validate: %s", r.raw)
						}
					}},
				{name: "checkin", req: req{method: "POST", path: "/api/tickets/" + a2.str("code") + "/checkin", as: org},
					status: http.StatusConflict, code: "ticket_cancelled"},
				{name: "holders", req: req{method: "GET", path: "/internal/events/" + ev + "/tickets?status=cancelled"}, status: http.StatusOK,
					check: func(t *testing.T, r response) {
						if len(r.items()) != 2 {
							t.Fatalf("cancelled holders: %s", r.raw)
						}
					}},
				{name: "my tickets", req: req{method: "GET", path: "/api/tickets", as: alice}, status: http.StatusOK,
					check: func(t *testing.T, r response) {
						for _, it := range r.items() {
							if it["status"] != "cancelled" {
								t.Fatalf("alice's tickets: %s", r.raw)
							}
						}
					}},
			})
		})
	}
	check("event service up")
	if err := p.event.stop(); err != nil {
		t.Fatal(err)
	}
	check("event service down")
}

// TestPurchasesRacingCancellation: purchases running while the cancellation is handled
// either commit before it (and are then cancelled) or are refused: once it is handled, the
// event has no active ticket.
func TestPurchasesRacingCancellation(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	org := organizer()
	ev := p.publishedEvent(org, "Race")
	typ := p.ticketType(org, ev, "standard", 100_000)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bought, refused atomic.Int64
	var failure atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := p.buy(buyer(), ev, typ, nil)
				switch {
				case err != nil:
					failure.Store(err)
					return
				case r.status == http.StatusCreated:
					bought.Add(1)
				case r.status == http.StatusConflict && r.str("code") == "event_cancelled":
					refused.Add(1)
				default:
					failure.Store(errors.New(string(r.raw)))
					return
				}
			}
		}()
	}
	eventually(t, 30*time.Second, "some purchases", func() bool { return bought.Load() >= 20 })
	// Purchases that passed the event service's check before the cancellation committed
	// there race its message through the consumer: the counter row's lock orders each of
	// them before (its ticket gets cancelled) or after (it is refused) the consumer.
	p.cancelEvent(org, ev)
	p.waitCancelled(ev)
	close(stop)
	wg.Wait()
	if err, _ := failure.Load().(error); err != nil {
		t.Fatal(err)
	}
	if n := scalar[int](p, `SELECT count(*) FROM tickets WHERE event_id = $1 AND status = 'active'`, ev); n != 0 {
		t.Fatalf("%d active tickets after the cancellation was handled", n)
	}
	sold := scalar[int](p, `SELECT sold FROM ticket_types WHERE id = $1`, typ)
	if n := scalar[int](p, `SELECT count(*) FROM tickets WHERE event_id = $1`, ev); n != sold || int64(n) != bought.Load() {
		t.Fatalf("%d tickets, sold %d, %d purchases answered 201", n, sold, bought.Load())
	}
	t.Logf("%d bought, %d refused", bought.Load(), refused.Load())
}

func mustJSON(t *testing.T, ev cloudevent.Event) []byte {
	t.Helper()
	msg, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// produce writes values to topic with one key, in order, as the services' writer would.
func produce(t *testing.T, brokers []string, topic string, key []byte, values ...[]byte) {
	t.Helper()
	w := kafkabus.NewWriter(brokers)
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Topic: topic, Key: key, Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// TestPurchasesWhileKafkaIsDown: with the broker stopped, purchases keep succeeding as fast
// as before (they only write the outbox); when it comes back, every message reaches Kafka.
func TestPurchasesWhileKafkaIsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := kafkaserver.Start(ctx, kafkaserver.Options{Dir: t.TempDir()})
	if err != nil {
		if errors.Is(err, kafkaserver.ErrUnavailable) && os.Getenv(kafkatest.EnvRequire) != "1" {
			t.Skipf("no Apache Kafka broker: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })

	p := newPlatform(t, []string{srv.Brokers()})
	org := organizer()
	ev := p.publishedEvent(org, "Outage")
	typ := p.ticketType(org, ev, "standard", 1000)
	var ids []string
	for range 5 {
		ids = append(ids, p.mustBuy(buyer(), ev, typ).str("id"))
	}
	// The pipeline works (the relay creates the topics in the background at start).
	eventually(t, 60*time.Second, "the first purchases to reach Kafka", func() bool {
		return scalar[int](p, `SELECT count(*) FROM outbox WHERE published_at IS NOT NULL`) == 5
	})

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	const during = 30
	start := time.Now()
	for range during {
		ids = append(ids, p.mustBuy(buyer(), ev, typ).str("id"))
	}
	t.Logf("%d purchases with Kafka down took %v", during, time.Since(start))
	if pending := scalar[int](p, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); pending != during {
		t.Fatalf("%d messages waiting in the outbox, want %d", pending, during)
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := p.consumeTickets("ticket.purchased", len(ids))
	got := map[string]bool{}
	for _, m := range msgs {
		got[m.Data.TicketID.String()] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("ticket %s has no message on Kafka", id)
		}
	}
	eventually(t, 30*time.Second, "the outbox to be marked published", func() bool {
		return scalar[int](p, `SELECT count(*) FROM outbox WHERE published_at IS NULL`) == 0
	})
}
