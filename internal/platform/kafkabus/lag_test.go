package kafkabus_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
)

// groupLag is the sum of sbor_kafka_consumer_lag over the partitions of topic for group, and
// how many partitions have a series.
func groupLag(t *testing.T, group, topic string) (sum float64, partitions int) {
	t.Helper()
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "sbor_kafka_consumer_lag" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] == group && labels["topic"] == topic {
				sum += m.GetGauge().GetValue()
				partitions++
			}
		}
	}
	return sum, partitions
}

// TestConsumerLagFollowsTheBrokers: the lag of every partition is the group's, read from the
// brokers, so it grows while the consumer is stuck (no message handled, nothing to update it
// from) and falls to zero once everything is handled.
func TestConsumerLagFollowsTheBrokers(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, "")
	group := topic + "-group"
	publish(t, brokers, topic, "m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")

	// The handler handles four messages, then hangs on the fifth until released.
	var handled atomic.Int32
	release := make(chan struct{})
	handler := func(ctx context.Context, msg kafka.Message) error {
		if handled.Load() == 4 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		handled.Add(1)
		return nil
	}
	runConsumer(t, &kafkabus.Consumer{
		Brokers: brokers, Group: group, Topics: []string{topic}, Handler: handler,
		CommitInterval: -1, // each offset committed as its message is handled
		LagInterval:    100 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
	})

	lagIs := func(want float64) func() bool {
		return func() bool {
			sum, partitions := groupLag(t, group, topic)
			return sum == want && partitions == 3
		}
	}
	waitFor(t, "a lag of 5 on 3 partitions while the fifth message hangs", 60*time.Second, lagIs(5))
	// Stuck, with more arriving: the lag grows though nothing is handled.
	publish(t, brokers, topic, "n0", "n1", "n2", "n3", "n4", "n5")
	waitFor(t, "a lag of 11 while still stuck", 30*time.Second, lagIs(11))
	if n := handled.Load(); n != 4 {
		t.Fatalf("%d messages handled while stuck, want 4", n)
	}

	close(release)
	waitFor(t, "every message handled", 30*time.Second, func() bool { return handled.Load() == 15 })
	waitFor(t, "no lag once everything is handled", 30*time.Second, lagIs(0))
	sum, _ := groupLag(t, group, topic)
	t.Log(fmt.Sprintf("lag after catching up: %v", sum))
}
