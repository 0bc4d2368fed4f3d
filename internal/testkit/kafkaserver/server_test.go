package kafkaserver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sbor-dev/sbor/internal/testkit/kafkaserver"
)

// start runs a broker for one test. Without Java or the jars it skips,
// unless SBOR_REQUIRE_KAFKA=1.
func start(t *testing.T) *kafkaserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := kafkaserver.Start(ctx, kafkaserver.Options{Dir: t.TempDir()})
	if err != nil {
		if errors.Is(err, kafkaserver.ErrUnavailable) && os.Getenv("SBOR_REQUIRE_KAFKA") != "1" {
			t.Skipf("skipping: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			if b, err := os.ReadFile(srv.LogPath()); err == nil {
				t.Logf("broker log tail:\n%s", tail(string(b), 4000))
			}
		}
	})
	tm := srv.Timings()
	t.Logf("broker %s: fetch %v, format %v, start %v (CDS archive mapped: %v)", srv.Brokers(), tm.Fetch, tm.Format, tm.Start, tm.CDS)
	return srv
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func createTopic(t *testing.T, broker, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func produce(t *testing.T, broker, topic string, from, to int) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(broker),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := from; i < to; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Right after a (re)start, partition leadership may still be settling:
	// kafka-go retries retriable errors itself, this covers the rest.
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = w.WriteMessages(ctx, msgs...); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("produce to %s: %v", topic, err)
}

// consumeGroup reads want messages with a kafka-go consumer group, which
// exercises JoinGroup/SyncGroup/OffsetFetch/OffsetCommit against the broker.
func consumeGroup(t *testing.T, broker, topic, group string, want int) []string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{broker},
		Topic:       topic,
		GroupID:     group,
		StartOffset: kafka.FirstOffset,
		MaxWait:     100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []string
	for len(got) < want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consume %s after %d of %d messages: %v", topic, len(got), want, err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
		got = append(got, string(m.Value))
	}
	sort.Strings(got)
	return got
}

func values(from, to int) []string {
	var v []string
	for i := from; i < to; i++ {
		v = append(v, fmt.Sprintf("v%d", i))
	}
	sort.Strings(v)
	return v
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBrokerLifecycle starts a real broker, produces with kafka-go
// (acks=all) and consumes with a consumer group, then crashes it with Kill,
// restarts it on the same port and data and checks nothing acknowledged was
// lost, and finally stops and restarts it gracefully.
func TestBrokerLifecycle(t *testing.T) {
	srv := start(t)
	broker := srv.Brokers()
	const topic = "lifecycle"
	createTopic(t, broker, topic)

	produce(t, broker, topic, 0, 20)
	if got := consumeGroup(t, broker, topic, "g1", 20); !equal(got, values(0, 20)) {
		t.Fatalf("before kill: got %v", got)
	}

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Fatal("still running after Kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Brokers() != broker {
		t.Fatalf("address changed across restart: %s -> %s", broker, srv.Brokers())
	}
	t.Logf("restart after kill: %v", srv.Timings().Start)

	produce(t, broker, topic, 20, 30)
	// A fresh group reads everything from the start: acknowledged writes
	// survived the crash.
	if got := consumeGroup(t, broker, topic, "g2", 30); !equal(got, values(0, 30)) {
		t.Fatalf("after kill+restart: got %d messages %v", len(got), got)
	}
	// The first group resumes from its committed offsets.
	if got := consumeGroup(t, broker, topic, "g1", 10); !equal(got, values(20, 30)) {
		t.Fatalf("g1 resumed with %v", got)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart after stop: %v (CDS archive mapped: %v)", srv.Timings().Start, srv.Timings().CDS)
	if got := consumeGroup(t, broker, topic, "g3", 30); !equal(got, values(0, 30)) {
		t.Fatalf("after stop+restart: got %v", got)
	}
}

// TestPartitionReaderAndAutoCreate checks the other kafka-go paths services
// use: a writer that auto-creates its topic (num.partitions=3) and a
// partition reader without a group.
func TestPartitionReaderAndAutoCreate(t *testing.T) {
	srv := start(t)
	broker := srv.Brokers()
	const topic = "auto-created"
	w := &kafka.Writer{
		Addr:                   kafka.TCP(broker),
		Topic:                  topic,
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond,
		AllowAutoTopicCreation: true,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	for attempt := 0; attempt < 40; attempt++ {
		if err = w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("hello")}); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("produce with auto-create: %v", err)
	}
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("auto-created topic has %d partitions, want 3", len(parts))
	}
	found := 0
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		last, err := r.ReadLag(ctx)
		if err != nil {
			r.Close()
			t.Fatalf("partition %d lag: %v", p.ID, err)
		}
		if last > 0 {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("partition %d: %v", p.ID, err)
			}
			if string(m.Value) != "hello" {
				t.Fatalf("read %q", m.Value)
			}
			found++
		}
		r.Close()
	}
	if found != 1 {
		t.Fatalf("message found in %d partitions, want 1", found)
	}
}
