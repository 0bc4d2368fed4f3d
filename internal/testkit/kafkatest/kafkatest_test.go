package kafkatest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// produce writes msgs the way Sbor's services do: kafka-go, acks=all.
func produce(t *testing.T, brokers []string, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	t.Logf("backend %s at %v", kafkatest.BackendOf(t), brokers)
	topic := kafkatest.Topic(t, brokers, "roundtrip")

	var msgs []kafka.Message
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("event-%d", i%5)
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(fmt.Sprintf("%s/%02d", key, i))})
	}
	produce(t, brokers, topic, msgs...)

	got := kafkatest.Consume(t, brokers, topic, 30, 30*time.Second)
	if len(got) != 30 {
		t.Fatalf("got %d messages", len(got))
	}
	// One key's messages stay in order (same partition, ascending offsets).
	last := map[string]string{}
	partitionOf := map[string]int{}
	for _, m := range got {
		k := string(m.Key)
		if m.Topic != topic {
			t.Fatalf("message from topic %q", m.Topic)
		}
		if p, ok := partitionOf[k]; ok && p != m.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, m.Partition)
		}
		partitionOf[k] = m.Partition
		if v := string(m.Value); v <= last[k] {
			t.Fatalf("key %s: %s after %s", k, v, last[k])
		} else {
			last[k] = v
		}
	}
	if len(last) != 5 {
		t.Fatalf("got %d keys, want 5", len(last))
	}
}

// TestTopicsAreIsolated: two tests asking for the same prefix get distinct
// topics and never see each other's messages.
func TestTopicsAreIsolated(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	a := kafkatest.Topic(t, brokers, "shared/prefix")
	b := kafkatest.Topic(t, brokers, "shared/prefix")
	if a == b {
		t.Fatalf("same topic twice: %s", a)
	}
	produce(t, brokers, a, kafka.Message{Value: []byte("a")})
	produce(t, brokers, b, kafka.Message{Value: []byte("b1")}, kafka.Message{Value: []byte("b2")})
	if got := kafkatest.Consume(t, brokers, a, 1, 20*time.Second); string(got[0].Value) != "a" {
		t.Fatalf("topic a: %q", got[0].Value)
	}
	for _, m := range kafkatest.Consume(t, brokers, b, 2, 20*time.Second) {
		if v := string(m.Value); v != "b1" && v != "b2" {
			t.Fatalf("topic b: %q", v)
		}
	}
}

// TestConsumerGroup checks a kafka-go consumer group (what the services'
// consumers are) against the shared broker.
func TestConsumerGroup(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, "group")
	produce(t, brokers, topic, kafka.Message{Key: []byte("k1"), Value: []byte("1")}, kafka.Message{Key: []byte("k2"), Value: []byte("2")}, kafka.Message{Key: []byte("k3"), Value: []byte("3")})

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     brokers,
		GroupID:     topic + "-group",
		Topic:       topic,
		StartOffset: kafka.FirstOffset,
		MaxWait:     100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := map[string]bool{}
	start := time.Now()
	for len(seen) < 3 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(seen), err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
		seen[string(m.Value)] = true
	}
	t.Logf("consumer group read 3 messages in %v", time.Since(start))
}
