package event_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/services/event"
)

// topicPrefix is unique per test, so tests sharing the broker never see each other's topics.
func topicPrefix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "."
}

// kafkaConfig is a service configuration that publishes to brokers, creating its topics.
func kafkaConfig(brokers []string) event.Config {
	return event.Config{KafkaBrokers: brokers, TopicPrefix: topicPrefix(), CreateTopics: true, Partitions: 3, ReplicationFactor: 1}
}

// delivered is a message as read from Kafka.
type delivered struct {
	msg  kafka.Message
	ev   cloudevent.Event
	data cloudevent.EventData
}

// consume reads every message of one of the service's topics once the outbox is drained,
// and drops redeliveries (the relay publishes at least once; a consumer recognises a repeat
// by its CloudEvent id), keeping partition order.
func consume(t *testing.T, s *service, brokers []string, cfg event.Config, typ string) []delivered {
	t.Helper()
	waitOutboxEmpty(t, s)
	topic := cfg.TopicPrefix + typ
	waitTopic(t, brokers, topic)
	n := topicSize(t, brokers, topic)
	if n == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []delivered
	for _, m := range kafkatest.Consume(t, brokers, topic, n, 60*time.Second) {
		ev, err := cloudevent.Decode(m.Value)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if seen[ev.ID] {
			t.Logf("%s: redelivery of %s", typ, ev.ID)
			continue
		}
		seen[ev.ID] = true
		d := delivered{msg: m, ev: ev}
		if err := ev.DecodeData(&d.data); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		out = append(out, d)
	}
	return out
}

// topicSize is the number of messages in topic.
func topicSize(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	resp, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("offsets of %s: %v", topic, err)
	}
	n := 0
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, p.Partition, p.Error)
		}
		n += int(p.LastOffset - p.FirstOffset)
	}
	return n
}

// waitTopic waits until the service has created topic and each partition has a leader.
func waitTopic(t *testing.T, brokers []string, topic string) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0 {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Error == nil && p.Leader.Host != ""
			}
			if ready {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s was not created: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKafkaDelivery: every change reaches its topic on a real broker, keyed by the event id,
// as a CloudEvent carrying the event as the change left it, and one event's messages keep
// their order.
func TestKafkaDelivery(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	cfg := kafkaConfig(brokers)
	s := startService(t, cfg)
	owner := organizer()

	a := s.create(owner, "A", 12*time.Hour)
	s.must(http.StatusOK, "PUT", "/api/events/"+a, eventBody("A v2", 12*time.Hour), owner)
	s.must(http.StatusOK, "PUT", "/api/events/"+a, eventBody("A v3", 12*time.Hour), owner)
	b := s.published(owner, "B", 30*time.Hour)
	s.must(http.StatusOK, "POST", "/api/events/"+a+"/publish", nil, owner)
	s.must(http.StatusOK, "POST", "/internal/events/"+a+"/remind", nil, nil)
	s.must(http.StatusOK, "POST", "/api/events/"+b+"/cancel", nil, owner)
	s.must(http.StatusOK, "POST", "/api/events/"+a+"/cancel", nil, owner)

	type want struct {
		key, title, status string
		version            int64
	}
	check := func(typ string, wants []want) {
		t.Helper()
		got := consume(t, s, brokers, cfg, typ)
		if len(got) != len(wants) {
			t.Fatalf("%s: %d messages, want %d", typ, len(got), len(wants))
		}
		// Messages of one key are on one partition in order; across keys the order is free.
		byKey := map[string][]delivered{}
		for _, d := range got {
			byKey[string(d.msg.Key)] = append(byKey[string(d.msg.Key)], d)
		}
		for _, w := range wants {
			if len(byKey[w.key]) == 0 {
				t.Fatalf("%s: no message for %s (v%d)", typ, w.key, w.version)
			}
			d := byKey[w.key][0]
			byKey[w.key] = byKey[w.key][1:]
			if d.ev.Type != typ || d.ev.Source != "sbor/event" || d.ev.Subject != w.key || d.ev.DataContentType != "application/json" {
				t.Errorf("%s envelope: %+v", typ, d.ev)
			}
			if d.data.EventID.String() != w.key || d.data.Title != w.title || d.data.Status != w.status ||
				d.data.Version != w.version || d.data.OrganizerID != owner.UserID {
				t.Errorf("%s data: %+v, want %+v", typ, d.data, w)
			}
		}
	}
	check(cloudevent.TypeEventUpdated, []want{{a, "A v2", "draft", 2}, {a, "A v3", "draft", 3}})
	check(cloudevent.TypeEventPublished, []want{{b, "B", "published", 2}, {a, "A v3", "published", 4}})
	check(cloudevent.TypeEventReminder, []want{{a, "A v3", "published", 5}})
	check(cloudevent.TypeEventCancelled, []want{{b, "B", "cancelled", 3}, {a, "A v3", "cancelled", 6}})
}

func waitOutboxEmpty(t *testing.T, s *service) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int
		if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox rows still unpublished", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServesWhileKafkaIsDown: the service starts and serves with no broker reachable, the
// outbox keeps every message, and once Kafka is reachable the topics are created and every
// message is delivered, in order per event.
func TestServesWhileKafkaIsDown(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	// The service bootstraps through a port where nothing listens yet: Kafka is "down".
	// Later a proxy to the real broker opens on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := ln.Addr().String()
	ln.Close()
	cfg := kafkaConfig([]string{downAddr})
	s := startService(t, cfg)
	owner := organizer()

	var ids []string
	for range 5 {
		id := s.published(owner, "Offline", 48*time.Hour)
		s.must(http.StatusOK, "POST", "/api/events/"+id+"/cancel", nil, owner)
		ids = append(ids, id)
	}
	var pending int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 10 {
		t.Fatalf("%d unpublished outbox rows while Kafka is down, want 10", pending)
	}

	proxyTo(t, downAddr, brokers[0])
	published := consume(t, s, brokers, cfg, cloudevent.TypeEventPublished)
	cancelled := consume(t, s, brokers, cfg, cloudevent.TypeEventCancelled)
	seen := map[string]int{}
	for _, d := range append(published, cancelled...) {
		seen[string(d.msg.Key)]++
	}
	for _, id := range ids {
		if seen[id] != 2 {
			t.Fatalf("event %s: %d messages, want 2", id, seen[id])
		}
	}
}

// proxyTo listens on addr and forwards every connection to target until the test ends.
// Kafka clients only bootstrap through it: the metadata names the real broker.
func proxyTo(t *testing.T, addr, target string) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was free a moment ago; retry briefly if something grabbed it
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	})
}
