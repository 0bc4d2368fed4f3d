package event

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

func newCore(t *testing.T) (*Core, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(context.Background(), pool, Migrations()...); err != nil {
		t.Fatal(err)
	}
	return NewCore(NewStore(pool)), pool
}

func outboxCount(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTransitionIsAtomicWithOutbox: when writing the announcement fails, the state change is
// rolled back with it, and a refused transition writes no announcement.
func TestTransitionIsAtomicWithOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := newCore(t)
	owner := identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer}
	start := time.Now().Add(48 * time.Hour)
	ev, err := c.Create(ctx, owner, NewEvent{Title: "Atomic", StartsAt: start, EndsAt: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	failing := func(Event) (outbox.Message, error) { return outbox.Message{}, errors.New("announcement failed") }
	if _, err := c.store.Publish(ctx, ev.ID, owner.UserID, failing); err == nil {
		t.Fatal("publish succeeded although its announcement failed")
	}
	// An outbox insert that PostgreSQL refuses (text cannot hold a NUL byte) rolls back the
	// UPDATE too.
	badRow := func(Event) (outbox.Message, error) {
		return outbox.Message{Topic: "event.published", Key: "bad\x00key", Payload: []byte("{}")}, nil
	}
	if _, err := c.store.Publish(ctx, ev.ID, owner.UserID, badRow); err == nil {
		t.Fatal("publish succeeded although its outbox row was refused")
	}
	got, err := c.ByID(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusDraft || got.Version != 1 || got.PublishedAt != nil {
		t.Fatalf("after failed publishes: %+v", got)
	}
	if n := outboxCount(t, pool); n != 0 {
		t.Fatalf("%d outbox rows after failed publishes", n)
	}

	// Refused transitions write nothing.
	other := identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer}
	for _, try := range []func() error{
		func() error { _, err := c.Publish(ctx, other, ev.ID); return err },
		func() error { _, err := c.Cancel(ctx, other, ev.ID); return err },
		func() error { _, err := c.Remind(ctx, ev.ID); return err },
		func() error { _, err := c.Publish(ctx, owner, uuid.New()); return err },
	} {
		if err := try(); err == nil {
			t.Fatal("a refused transition succeeded")
		}
	}
	if n := outboxCount(t, pool); n != 0 {
		t.Fatalf("%d outbox rows after refused transitions", n)
	}

	if _, err := c.Publish(ctx, owner, ev.ID); err != nil {
		t.Fatal(err)
	}
	if n := outboxCount(t, pool); n != 1 {
		t.Fatalf("%d outbox rows after a publish", n)
	}
}

// TestSendDueReminders: the reminder loop picks exactly the published events that start
// within the lead time and have had no reminder, once, even with two replicas at it.
func TestSendDueReminders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := newCore(t)
	org := uuid.New()
	insert := func(status Status, startsIn time.Duration, reminded bool) uuid.UUID {
		t.Helper()
		id := uuid.New()
		_, err := pool.Exec(ctx, `
			INSERT INTO events (id, organizer_id, title, starts_at, ends_at, status, published_at, reminder_sent_at)
			VALUES ($1, $2, 'E', now() + make_interval(secs => $3), now() + make_interval(secs => $3 + 3600), $4,
				CASE WHEN $4 <> 'draft' THEN now() END, CASE WHEN $5 THEN now() END)`,
			id, org, startsIn.Seconds(), string(status), reminded)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	due := []uuid.UUID{
		insert(StatusPublished, time.Minute, false),
		insert(StatusPublished, 23*time.Hour, false),
		insert(StatusPublished, 24*time.Hour-time.Minute, false),
	}
	slices.SortFunc(due, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	notDue := []uuid.UUID{
		insert(StatusPublished, 24*time.Hour+time.Minute, false), // outside the lead time
		insert(StatusPublished, -time.Minute, false),             // already started
		insert(StatusPublished, time.Hour, true),                 // reminded before
		insert(StatusDraft, time.Hour, false),
		insert(StatusCancelled, time.Hour, false),
	}

	n, err := c.SendDueReminders(ctx, 24*time.Hour)
	if err != nil || n != len(due) {
		t.Fatalf("sent %d (%v), want %d", n, err, len(due))
	}
	rows, err := pool.Query(ctx, `SELECT key, topic, payload FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var keys []uuid.UUID
	for rows.Next() {
		var key, topic string
		var payload []byte
		if err := rows.Scan(&key, &topic, &payload); err != nil {
			t.Fatal(err)
		}
		ce, err := cloudevent.Decode(payload)
		if err != nil || topic != cloudevent.TypeEventReminder || ce.Type != topic || ce.Subject != key {
			t.Fatalf("outbox row %s %s %v", topic, key, err)
		}
		keys = append(keys, uuid.MustParse(key))
	}
	slices.SortFunc(keys, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(keys, due) {
		t.Fatalf("reminded %v, want %v", keys, due)
	}
	for _, id := range notDue {
		ev, _ := c.ByID(ctx, id)
		if ev.Version != 1 {
			t.Errorf("event %s (%s, starts %s) was touched", id, ev.Status, time.Until(ev.StartsAt).Round(time.Minute))
		}
	}
	if n, err := c.SendDueReminders(ctx, 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("second run sent %d (%v)", n, err)
	}

	// Two loops (two replicas) racing over many due events remind each exactly once.
	for range 2*reminderBatch + 10 {
		insert(StatusPublished, 2*time.Hour, false)
	}
	var wg sync.WaitGroup
	sent := make([]int, 4)
	for i := range sent {
		wg.Go(func() {
			var err error
			if sent[i], err = c.SendDueReminders(ctx, 24*time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range sent {
		total += n
	}
	if total != 2*reminderBatch+10 {
		t.Fatalf("racing loops sent %v = %d reminders, want %d", sent, total, 2*reminderBatch+10)
	}
	var reminders, distinct int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT key) FROM outbox WHERE topic = 'event.reminder'`).Scan(&reminders, &distinct); err != nil {
		t.Fatal(err)
	}
	if reminders != len(due)+total || distinct != reminders {
		t.Fatalf("%d reminder messages for %d events", reminders, distinct)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := Cursor{StartsAt: time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC), ID: uuid.New()}
	got, err := ParseCursor(c.Encode())
	if err != nil || !got.StartsAt.Equal(c.StartsAt) || got.ID != c.ID {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add(Cursor{StartsAt: time.Now(), ID: uuid.New()}.Encode())
	f.Add("")
	f.Add("MS4xLjI")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to a cursor meaning the same position.
		again, err := ParseCursor(c.Encode())
		if err != nil || !again.StartsAt.Equal(c.StartsAt) || again.ID != c.ID {
			t.Fatalf("%q: %+v then %+v %v", s, c, again, err)
		}
	})
}
