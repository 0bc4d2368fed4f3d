package kafkabus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// batchRecorder is a BatchHandler that fails some messages: "transient-*" once with a plain
// error, "poison-*" always with a permanent one.
type batchRecorder struct {
	mu       sync.Mutex
	batches  [][]string
	handled  map[string]int // successful handlings per value
	attempts map[string]int
	dead     []string
}

func newBatchRecorder() *batchRecorder {
	return &batchRecorder{handled: map[string]int{}, attempts: map[string]int{}}
}

func (r *batchRecorder) handle(ctx context.Context, batch []kafkabus.Message) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	values := make([]string, len(batch))
	errs := make([]error, len(batch))
	for i, m := range batch {
		v := string(m.Value)
		values[i] = v
		r.attempts[v]++
		if m.Ctx == nil {
			errs[i] = kafkabus.Permanent(errors.New("no message context"))
			continue
		}
		switch {
		case strings.HasPrefix(v, "transient-") && r.attempts[v] == 1:
			errs[i] = errors.New("database away")
		case strings.HasPrefix(v, "poison-"):
			errs[i] = kafkabus.Permanent(errors.New("bad JSON"))
		default:
			r.handled[v]++
		}
	}
	r.batches = append(r.batches, values)
	return errs
}

func (r *batchRecorder) deadLetter(_ context.Context, msg kafka.Message, _ error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = append(r.dead, string(msg.Value))
	return nil
}

// done counts the values handled or parked.
func (r *batchRecorder) done() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.handled) + len(r.dead)
}

func publish(t *testing.T, brokers []string, topic string, values ...string) {
	t.Helper()
	w := kafkabus.NewWriter(brokers)
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Topic: topic, Key: []byte(fmt.Sprint(i % 7)), Value: []byte(v)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runConsumer runs c until the returned stop is called (and the test ends at the latest).
func runConsumer(t *testing.T, c *kafkabus.Consumer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consumer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestBatchConsumer: a backlog arrives in batches; a message that fails is retried on its
// own while the others of its batch are not handed over again; a poison message is parked
// once; and every offset is committed, so the group's next consumer gets only new messages.
func TestBatchConsumer(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, "")
	group := topic + "-group"

	const total = 120
	var values []string
	for i := range total {
		switch i {
		case 7:
			values = append(values, "transient-7")
		case 13:
			values = append(values, "poison-13")
		default:
			values = append(values, fmt.Sprintf("ok-%d", i))
		}
	}
	publish(t, brokers, topic, values...) // a backlog before the consumer starts

	rec := newBatchRecorder()
	consumer := func(r *batchRecorder) *kafkabus.Consumer {
		return &kafkabus.Consumer{
			Brokers: brokers, Group: group, Topics: []string{topic},
			BatchHandler: r.handle, DeadLetter: r.deadLetter, MaxBatch: 50, BatchWait: 20 * time.Millisecond,
			MaxBackoff: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
		}
	}
	stop := runConsumer(t, consumer(rec))
	waitFor(t, "every message", 90*time.Second, func() bool { return rec.done() == total })
	stop()

	rec.mu.Lock()
	largest := 0
	for _, b := range rec.batches {
		largest = max(largest, len(b))
		if len(b) > 50 {
			t.Errorf("a batch of %d messages, over MaxBatch 50", len(b))
		}
	}
	if largest < 2 {
		t.Errorf("largest batch %d: the backlog was handed over one message at a time", largest)
	}
	for _, v := range values {
		switch {
		case v == "poison-13":
			if rec.handled[v] != 0 {
				t.Errorf("%s handled", v)
			}
		case rec.handled[v] != 1:
			t.Errorf("%s handled %d times, want once", v, rec.handled[v])
		}
	}
	if rec.attempts["transient-7"] != 2 {
		t.Errorf("transient-7 attempted %d times, want 2", rec.attempts["transient-7"])
	}
	retried := false
	for _, b := range rec.batches {
		if len(b) == 1 && b[0] == "transient-7" {
			retried = true
		}
	}
	if !retried {
		t.Errorf("transient-7 was not retried on its own: batches %v", rec.batches)
	}
	if len(rec.dead) != 1 || rec.dead[0] != "poison-13" {
		t.Errorf("dead letters %v, want [poison-13]", rec.dead)
	}
	rec.mu.Unlock()

	// The next consumer of the group starts after the committed offsets.
	next := newBatchRecorder()
	runConsumer(t, consumer(next))
	publish(t, brokers, topic, "after")
	waitFor(t, "the new message", 90*time.Second, func() bool { return next.done() >= 1 })
	time.Sleep(500 * time.Millisecond) // time for anything redelivered to show up
	next.mu.Lock()
	defer next.mu.Unlock()
	if len(next.handled) != 1 || next.handled["after"] != 1 {
		t.Fatalf("the group's next consumer got %v, want only the new message", next.handled)
	}
}
