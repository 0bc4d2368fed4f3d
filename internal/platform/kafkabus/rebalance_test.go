package kafkabus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
)

// numbered returns n message values: prefix-0, prefix-1, …
func numbered(prefix string, n int) []string {
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return values
}

// TestRebalanceDoesNotRewindCommittedOffsets: a member that is still handling a batch when
// a second member joins must not commit that batch after the partitions have moved on. Here
// the first member's first batch (messages of every partition) hangs while more messages
// arrive and a second member joins. Whatever the second member handles and commits, the
// first member's late commit of its old batch must not move a partition's committed offset
// back: after everything settles, every partition's committed offset is its end and stays
// there. (kafka-go's Reader committed such a batch with the next generation's id, which the
// coordinator accepts: segmentio/kafka-go#1308.)
func TestRebalanceDoesNotRewindCommittedOffsets(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, "")
	group := topic + "-group"
	quiet := slog.New(slog.DiscardHandler)

	first := numbered("first", 21)
	publish(t, brokers, topic, first...)

	var mu sync.Mutex
	handled := map[string]int{}
	record := func(member string, batch []kafkabus.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			handled[string(m.Value)]++
			handled[member]++
		}
	}
	handledBy := func(member string) int {
		mu.Lock()
		defer mu.Unlock()
		return handled[member]
	}

	// Member a: its first batch hangs until released.
	hanging, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	runConsumer(t, &kafkabus.Consumer{
		Brokers: brokers, Group: group, Topics: []string{topic}, Log: quiet,
		MaxBatch: 1000, BatchWait: time.Second, // the whole backlog, every partition, in one batch
		CommitInterval: 50 * time.Millisecond,
		BatchHandler: func(ctx context.Context, batch []kafkabus.Message) []error {
			once.Do(func() {
				close(hanging)
				<-release
			})
			record("a", batch)
			return nil
		},
	})
	select {
	case <-hanging:
	case <-time.After(60 * time.Second):
		t.Fatal("member a never got its first batch")
	}

	second := numbered("second", 21)
	publish(t, brokers, topic, second...)
	runConsumer(t, &kafkabus.Consumer{
		Brokers: brokers, Group: group, Topics: []string{topic}, Log: quiet,
		CommitInterval: 50 * time.Millisecond,
		BatchHandler: func(ctx context.Context, batch []kafkabus.Message) []error {
			record("b", batch)
			return nil
		},
	})
	// Give member b time to take partitions over and commit what it handles, if the group
	// lets it while a's batch hangs (it should not: a rebalance waits for a's batch).
	deadline := time.Now().Add(4 * time.Second)
	for handledBy("b") == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(release)

	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	atEnd := func() (bool, string) {
		lags, err := kafkabus.GroupLag(context.Background(), client, group, []string{topic})
		if err != nil {
			return false, err.Error()
		}
		if len(lags[topic]) == 0 {
			return false, "no partition read"
		}
		for p, lag := range lags[topic] {
			if lag != 0 {
				return false, fmt.Sprintf("partition %d committed %d short of its end", p, lag)
			}
		}
		return true, ""
	}
	deadline = time.Now().Add(60 * time.Second)
	for ok, why := atEnd(); !ok; ok, why = atEnd() {
		if time.Now().After(deadline) {
			t.Fatalf("not every offset committed: %s", why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a late commit of a's old batch would land in this time
	if ok, why := atEnd(); !ok {
		t.Fatalf("a committed offset moved back after reaching the end: %s", why)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range append(first, second...) {
		if handled[v] == 0 {
			t.Errorf("%s never handled", v)
		}
	}
}

// TestRebalanceAbandonsAFailingBatch: a member whose batch keeps failing gives it up when a
// rebalance begins, so the group does not wait for it. The member's handling runs inside the
// generation, and the group forms the next one only when every member has joined again (or
// after the rebalance timeout, 10 s, without it): if its retries went on, a second member
// would get no partition for 10 s.
func TestRebalanceAbandonsAFailingBatch(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, "")
	group := topic + "-group"
	quiet := slog.New(slog.DiscardHandler)
	publish(t, brokers, topic, numbered("m", 30)...)

	// Member a fails every message, and backs off for longer and longer.
	retrying := make(chan struct{})
	var attempts atomic.Int32
	runConsumer(t, &kafkabus.Consumer{
		Brokers: brokers, Group: group, Topics: []string{topic}, Log: quiet,
		MaxBackoff: time.Minute,
		BatchHandler: func(ctx context.Context, batch []kafkabus.Message) []error {
			if attempts.Add(1) == 3 {
				close(retrying)
			}
			errs := make([]error, len(batch))
			for i := range errs {
				errs[i] = errors.New("database away")
			}
			return errs
		},
	})
	select {
	case <-retrying:
	case <-time.After(60 * time.Second):
		t.Fatal("member a never retried its batch")
	}

	joined := time.Now()
	var handledByB atomic.Int32
	runConsumer(t, &kafkabus.Consumer{
		Brokers: brokers, Group: group, Topics: []string{topic}, Log: quiet,
		BatchHandler: func(ctx context.Context, batch []kafkabus.Message) []error {
			handledByB.Add(int32(len(batch)))
			return nil
		},
	})
	waitFor(t, "member b to handle messages", 60*time.Second, func() bool { return handledByB.Load() > 0 })
	// Taking partitions over needs a heartbeat (1 s) and a join; waiting for member a's
	// retries would take the whole rebalance timeout (10 s).
	took := time.Since(joined)
	t.Logf("member b handled its first message %v after joining", took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Fatal("the rebalance waited for member a's retries")
	}
}
