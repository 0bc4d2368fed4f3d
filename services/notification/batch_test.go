package notification_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

// TestBacklogIsNotifiedOncePerPurchase: a backlog that arrived while the service was away
// (the consumer takes it in batches of many purchases per insert), with some messages twice
// in it, leaves exactly one notification per purchase.
func TestBacklogIsNotifiedOncePerPurchase(t *testing.T) {
	t.Parallel()
	b := newBus(t, 3)
	dbURL := pgtest.NewDatabase(t)
	const total = 600
	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	tickets := map[uuid.UUID]bool{}
	var msgs []kafka.Message
	for i := range total {
		ev, d := purchaseEvent(t, users[i%len(users)])
		tickets[d.TicketID] = true
		m := kafka.Message{Topic: b.prefix + cloudevent.TypeTicketPurchased, Key: []byte(d.TicketID.String()), Value: encode(t, ev)}
		msgs = append(msgs, m)
		if i%10 == 0 {
			msgs = append(msgs, m) // delivered twice by the producer
		}
	}
	b.publishNew(msgs...)

	group := "g-" + b.prefix
	startService(t, b.config(dbURL, group))
	b.waitCaughtUp(group)
	pool := openPool(t, dbURL)
	if n := count(t, pool, `SELECT count(*) FROM notifications`); n != total {
		t.Fatalf("%d notifications, want %d", n, total)
	}
	if n := count(t, pool, `SELECT count(DISTINCT ticket_id) FROM notifications`); n != total {
		t.Fatalf("%d tickets notified, want %d", n, total)
	}
	rows, err := pool.Query(context.Background(), `SELECT ticket_id FROM notifications`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if !tickets[id] {
			t.Fatalf("a notification for ticket %s, which nobody bought", id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if n := count(t, pool, `SELECT count(*) FROM notifications WHERE user_id = $1`, u); n != total/len(users) {
			t.Fatalf("user has %d notifications, want %d", n, total/len(users))
		}
	}
}

// TestRefusedPurchaseDoesNotHoldBackItsBatch: a purchase the database refuses to store (a
// NUL byte in its text) is parked in dead_letters, and the purchases fetched in the same
// batch are notified all the same.
func TestRefusedPurchaseDoesNotHoldBackItsBatch(t *testing.T) {
	t.Parallel()
	b := newBus(t, 1)
	dbURL := pgtest.NewDatabase(t)
	buyer := uuid.New()
	var values [][]byte
	for i := range 9 {
		ev, d := purchaseEvent(t, buyer)
		if i == 4 {
			d.EventTitle = "Go\x00Meetup"
			var err error
			if ev, err = cloudevent.New("/test", cloudevent.TypeTicketPurchased, d.TicketID.String(), time.Now(), d); err != nil {
				t.Fatal(err)
			}
		}
		values = append(values, encode(t, ev))
	}
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Topic: b.prefix + cloudevent.TypeTicketPurchased, Key: []byte("one-partition"), Value: v})
	}
	b.publishNew(msgs...) // one batch, before the consumer starts

	group := "g-" + b.prefix
	startService(t, b.config(dbURL, group))
	b.waitCaughtUp(group)
	pool := openPool(t, dbURL)
	if n := count(t, pool, `SELECT count(*) FROM notifications WHERE user_id = $1`, buyer); n != 8 {
		t.Fatalf("%d notifications, want the 8 storable purchases", n)
	}
	var offset int64
	var errText string
	if err := pool.QueryRow(context.Background(), `SELECT "offset", error FROM dead_letters`).Scan(&offset, &errText); err != nil {
		t.Fatal(fmt.Errorf("the refused purchase is not in dead_letters: %w", err))
	}
	if offset != 4 || errText == "" {
		t.Fatalf("dead letter at offset %d (%q), want offset 4 with its error", offset, errText)
	}
}

// publishNew writes msgs to topics created a moment ago: until the broker has elected their
// partitions' leaders a write may fail, and is tried again.
func (b *bus) publishNew(msgs ...kafka.Message) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := b.writer.WriteMessages(ctx, msgs...)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
