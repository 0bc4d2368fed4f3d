// Package kafkabus wraps kafka-go with the settings Sbor relies on: acknowledgement from every
// in-sync replica, a short batch timeout (kafka-go's 1 s default makes every synchronous write
// take a second), key-hashed partitioning so one aggregate stays ordered, and consumers that
// commit an offset only after the message was handled.
//
// Offsets of handled messages are committed in the background every CommitInterval (and when
// the consumer stops or its partitions are reassigned), not one round trip per message: a
// synchronous commit per message capped a consumer at one message per broker round trip
// (the flash-sale benchmark, test/bench, on 2 cores: purchase → notification p99 at half the
// peak purchase rate over 48 s with synchronous commits, the backlog never draining; 94 ms
// with these). A crash redelivers at most the messages handled in the last interval, which
// Sbor's idempotent consumers absorb.
package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
)

// SplitBrokers parses a comma-separated broker list.
func SplitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// NewWriter returns the one Writer a process shares for all topics (the topic is set per
// message).
func NewWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           2 * time.Millisecond,
		BatchSize:              500,
		WriteTimeout:           10 * time.Second,
		ReadTimeout:            10 * time.Second,
		MaxAttempts:            3,
		AllowAutoTopicCreation: false,
	}
}

// EnsureTopics creates the topics that do not exist yet.
func EnsureTopics(ctx context.Context, brokers []string, topics []string, partitions, replicationFactor int) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: replicationFactor})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// Ping checks that a broker answers.
func Ping(ctx context.Context, brokers []string) error {
	var d net.Dialer
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			conn.Close()
			return nil
		}
	}
	return errors.New("no Kafka broker answers")
}

// Consumer metrics, per group and topic.
var (
	consumed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_kafka_messages_handled_total", Help: "Kafka messages handled, by outcome (ok, skipped, error: a failed attempt that is retried).",
	}, []string{"group", "topic", "outcome"})
	consumerLag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sbor_kafka_consumer_lag", Help: "Messages behind the end of the partition after the last handled one.",
	}, []string{"group", "topic", "partition"})
)

// ErrPermanent marks a handler failure that retrying cannot fix (bad JSON, unknown type): the
// message is logged with its offset, handed to the dead-letter hook and skipped.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err as a permanent failure.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Handler handles one message. A nil error commits it; ErrPermanent skips it; any other error
// retries it with backoff, without committing, until it succeeds or the consumer stops.
type Handler func(ctx context.Context, msg kafka.Message) error

// Consumer reads a set of topics as one consumer group.
type Consumer struct {
	Brokers []string
	Group   string
	Topics  []string
	Handler Handler
	// DeadLetter, if set, stores a message that failed permanently before it is skipped.
	DeadLetter func(ctx context.Context, msg kafka.Message, cause error) error
	Log        *slog.Logger
	// MaxBackoff bounds the wait between retries of a failing message.
	MaxBackoff time.Duration
	// CommitInterval is how often the offsets of handled messages are committed:
	// DefaultCommitInterval when 0; negative commits synchronously after every message.
	CommitInterval time.Duration
}

// DefaultCommitInterval is how often a Consumer commits the offsets of handled messages.
const DefaultCommitInterval = 500 * time.Millisecond

// Run consumes until ctx is cancelled: FetchMessage → handle → CommitMessages.
func (c *Consumer) Run(ctx context.Context) error {
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	commitInterval := c.CommitInterval
	switch {
	case commitInterval == 0:
		commitInterval = DefaultCommitInterval
	case commitInterval < 0:
		commitInterval = 0 // kafka-go: synchronous
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:                c.Brokers,
		GroupID:                c.Group,
		GroupTopics:            c.Topics,
		StartOffset:            kafka.FirstOffset,
		MinBytes:               1,
		MaxBytes:               4 << 20,
		MaxWait:                250 * time.Millisecond,
		ReadBatchTimeout:       250 * time.Millisecond,
		HeartbeatInterval:      1 * time.Second,
		SessionTimeout:         10 * time.Second,
		RebalanceTimeout:       10 * time.Second,
		JoinGroupBackoff:       500 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		CommitInterval:         commitInterval, // an offset moves only after handling, either way
		ErrorLogger:            kafka.LoggerFunc(func(f string, a ...any) { c.Log.Debug("kafka reader: " + fmt.Sprintf(f, a...)) }),
	})
	defer r.Close()
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.Log.Warn("kafka fetch failed", "group", c.Group, "err", err)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if !c.handle(ctx, msg) {
			return nil
		}
		consumerLag.WithLabelValues(c.Group, msg.Topic, strconv.Itoa(msg.Partition)).Set(float64(max(0, msg.HighWaterMark-msg.Offset-1)))
		for {
			if err := r.CommitMessages(ctx, msg); err == nil || ctx.Err() != nil {
				break
			} else {
				c.Log.Warn("kafka commit failed", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "err", err)
			}
			if !sleep(ctx, time.Second) {
				return nil
			}
		}
	}
}

// handle runs the handler until it succeeds or fails permanently; false means ctx ended.
func (c *Consumer) handle(ctx context.Context, msg kafka.Message) bool {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.Handler(ctx, msg)
		if err == nil {
			consumed.WithLabelValues(c.Group, msg.Topic, "ok").Inc()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		where := []any{"group", c.Group, "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "key", string(msg.Key)}
		if errors.Is(err, ErrPermanent) {
			c.Log.Error("skipping message that cannot be handled", append(where, "err", err)...)
			if c.DeadLetter != nil {
				if dlErr := c.DeadLetter(ctx, msg, err); dlErr != nil {
					c.Log.Error("dead-letter store failed; retrying", append(where, "err", dlErr)...)
					if !sleep(ctx, backoff) {
						return false
					}
					continue
				}
			}
			consumed.WithLabelValues(c.Group, msg.Topic, "skipped").Inc()
			return true
		}
		consumed.WithLabelValues(c.Group, msg.Topic, "error").Inc()
		c.Log.Warn("message handling failed; retrying", append(where, "attempt", attempt, "err", err)...)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(backoff*2, c.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Header returns the value of a message header.
func Header(msg kafka.Message, key string) string {
	for _, h := range msg.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Where describes a message's position, for logs and dead letters.
func Where(msg kafka.Message) string {
	return msg.Topic + "/" + strconv.Itoa(msg.Partition) + "@" + strconv.FormatInt(msg.Offset, 10)
}
