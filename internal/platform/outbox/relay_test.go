package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// recordingPublisher passes every write on to a real Kafka writer and remembers when each
// happened and how many messages it held.
type recordingPublisher struct {
	w  *kafka.Writer
	mu sync.Mutex
	at []time.Time
	n  []int
}

func (p *recordingPublisher) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	p.at = append(p.at, time.Now())
	p.n = append(p.n, len(msgs))
	p.mu.Unlock()
	return p.w.WriteMessages(ctx, msgs...)
}

func (p *recordingPublisher) writes() ([]time.Time, []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.at...), append([]int(nil), p.n...)
}

type relayEnv struct {
	pool      *pgxpool.Pool
	brokers   []string
	topic     string
	publisher *recordingPublisher
	relay     *Relay
}

func newRelayEnv(t *testing.T) *relayEnv {
	t.Helper()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	if err := db.Migrate(ctx, pool, Migrations()); err != nil {
		t.Fatal(err)
	}
	brokers := kafkatest.Brokers(t)
	w := kafkabus.NewWriter(brokers)
	t.Cleanup(func() { w.Close() })
	env := &relayEnv{pool: pool, brokers: brokers, topic: kafkatest.Topic(t, brokers, ""), publisher: &recordingPublisher{w: w}}
	env.relay = &Relay{
		Pool: pool, Publisher: env.publisher, Log: slog.New(slog.DiscardHandler), Service: "test",
		// Only notifications wake the relay in these tests: a missed one would show as a
		// message that never arrives, not as a late one.
		PollInterval: time.Hour,
		MinInterval:  50 * time.Millisecond,
	}
	return env
}

func (e *relayEnv) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.relay.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
}

// add commits one transaction holding one message with payload p.
func (e *relayEnv) add(t *testing.T, key, p string) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), e.pool, func(tx pgx.Tx) error {
		return Add(context.Background(), tx, Message{Topic: e.topic, Key: key, Payload: []byte(p)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *relayEnv) scalar(t *testing.T, sql string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The relay's LISTEN connection is its own: an idle relay holds none of the pool's, which are
// for the service's requests.
func TestIdleRelayHoldsNoPoolConnection(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	env.start(t)
	env.add(t, "k", "one")
	kafkatest.Consume(t, env.brokers, env.topic, 1, time.Minute) // listening, read and published
	deadline := time.Now().Add(5 * time.Second)
	for env.pool.Stat().AcquiredConns() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("an idle relay holds %d of the pool's connections", env.pool.Stat().AcquiredConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayCoalescesCommitsIntoFewerReads(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	env.start(t)

	const commits = 300
	for i := range commits {
		env.add(t, "k", strconv.Itoa(i))
	}
	msgs := kafkatest.Consume(t, env.brokers, env.topic, commits, time.Minute)
	// One key: one partition, in commit order, each message once.
	for i, m := range msgs {
		if string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: out of order or repeated", i, m.Value)
		}
	}
	if n := env.scalar(t, "SELECT count(*) FROM outbox WHERE published_at IS NULL"); n != 0 {
		t.Fatalf("%d rows not marked published", n)
	}

	// Reads start at least MinInterval apart (no batch here is full), so the commits went out
	// in few writes: no more than the time they took allows, give or take one read's own
	// latency.
	at, sizes := env.publisher.writes()
	total := 0
	for _, n := range sizes {
		total += n
	}
	if total != commits {
		t.Fatalf("%d messages written in %d writes, want %d", total, len(at), commits)
	}
	if most := 2 + int(at[len(at)-1].Sub(at[0])/env.relay.MinInterval); len(at) > most {
		t.Fatalf("%d writes over %v: reads closer than MinInterval %v (at most %d)", len(at), at[len(at)-1].Sub(at[0]), env.relay.MinInterval, most)
	}
	t.Logf("%d commits published in %d writes", commits, len(at))

	// An idle relay publishes a lone message on its notification (PollInterval is an hour).
	time.Sleep(2 * env.relay.MinInterval)
	env.add(t, "k", "lone")
	if m := kafkatest.Consume(t, env.brokers, env.topic, commits+1, 30*time.Second); string(m[commits].Value) != "lone" {
		t.Fatalf("last message %q, want the lone one", m[commits].Value)
	}
}

func TestRelayWaitsForOlderTransactions(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	env.start(t)
	ctx := context.Background()

	// The older transaction writes first and commits last: its message must still go first,
	// and the younger one must not go before it.
	older, err := env.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback(ctx)
	if err := Add(ctx, older, Message{Topic: env.topic, Key: "k", Payload: []byte("older")}); err != nil {
		t.Fatal(err)
	}
	env.add(t, "k", "younger")
	time.Sleep(300 * time.Millisecond) // several of the relay's reads
	if at, _ := env.publisher.writes(); len(at) != 0 {
		t.Fatalf("%d writes while an older transaction was open", len(at))
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.Consume(t, env.brokers, env.topic, 2, 30*time.Second)
	if string(msgs[0].Value) != "older" || string(msgs[1].Value) != "younger" {
		t.Fatalf("published %q then %q, want older then younger", msgs[0].Value, msgs[1].Value)
	}
}

func TestRelayHousekeepingDeletesOnlyOldPublishedRows(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	ctx := context.Background()
	for i := range 6 {
		env.add(t, "k", fmt.Sprint(i))
	}
	// Rows 1-4 were written two hours ago; 1-3 and 5 have been published. Retention is an
	// hour: only 1-3 go. 4 (old, never published) and 5, 6 (recent) stay.
	if _, err := env.pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '2 hours' WHERE id <= 4`); err != nil {
		t.Fatal(err)
	}
	if _, err := env.pool.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE id IN (1, 2, 3, 5)`); err != nil {
		t.Fatal(err)
	}
	env.relay.Retention = time.Hour
	if err := env.relay.housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := env.pool.Query(ctx, `SELECT id FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(left) != "[4 5 6]" {
		t.Fatalf("rows left %v, want [4 5 6]", left)
	}
	// Everything old and published: all of it goes.
	if _, err := env.pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '2 hours', published_at = now()`); err != nil {
		t.Fatal(err)
	}
	if err := env.relay.housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := env.scalar(t, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("%d rows left, want none", n)
	}
}
