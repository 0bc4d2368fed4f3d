// Package kafkabus wraps kafka-go with the settings Sbor relies on: acknowledgement from every
// in-sync replica, a short batch timeout (kafka-go's 1 s default makes every synchronous write
// take a second), key-hashed partitioning so one aggregate stays ordered, and consumers that
// commit an offset only after the message was handled.
//
// Offsets of handled messages are committed every CommitInterval, between batches (and when
// the consumer stops or a rebalance begins), not one round trip per message: a
// synchronous commit per message capped a consumer at one message per broker round trip
// (the flash-sale benchmark, test/bench, on 2 cores: purchase → notification p99 at half the
// peak purchase rate over 48 s with synchronous commits, the backlog never draining; 94 ms
// with these). A crash redelivers at most the messages handled in the last interval, which
// Sbor's idempotent consumers absorb.
//
// A consumer with a BatchHandler takes the messages that are already there (up to MaxBatch,
// waiting at most BatchWait for more after the first) and handles them together, so a
// consumer whose work is a database insert pays one commit per batch instead of one per
// message: on the same benchmark the notification consumer, one insert per message, fell
// behind the peak purchase rate by seconds.
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

// Message is a consumed message with the context of its own handling (see messageContext).
type Message struct {
	kafka.Message
	Ctx context.Context
}

// BatchHandler handles several messages at once, say with one database statement. It
// returns nil when every message was handled, or one error per message, in order, with the
// meaning a Handler's error has: nil handled, ErrPermanent skipped (after DeadLetter), any
// other error retried with backoff, in a batch of the failed messages only. The messages
// handled in the meantime are not handed over again, but a crash before their offsets are
// committed redelivers them: handling must be idempotent, as for a Handler.
type BatchHandler func(ctx context.Context, batch []Message) []error

// Consumer reads a set of topics as one consumer group.
type Consumer struct {
	Brokers []string
	Group   string
	Topics  []string
	// Handler handles one message at a time; BatchHandler, if set, is used instead.
	Handler Handler
	// BatchHandler receives the messages fetched together: the first available one and
	// those that arrive within BatchWait after it, at most MaxBatch.
	BatchHandler BatchHandler
	// MaxBatch bounds a batch (DefaultMaxBatch when 0).
	MaxBatch int
	// BatchWait is how long a batch waits for more messages after its first
	// (DefaultBatchWait when 0): the latency a lone message pays for the batching.
	BatchWait time.Duration
	// DeadLetter, if set, stores a message that failed permanently before it is skipped.
	DeadLetter func(ctx context.Context, msg kafka.Message, cause error) error
	Log        *slog.Logger
	// MaxBackoff bounds the wait between retries of a failing message (DefaultMaxBackoff
	// when 0).
	MaxBackoff time.Duration
	// CommitInterval is how often the offsets of handled messages are committed:
	// DefaultCommitInterval when 0; negative commits synchronously after every message
	// (every batch, with a BatchHandler).
	CommitInterval time.Duration
	// LagInterval is how often the consumer reads the group's lag on every partition of its
	// topics from the brokers (DefaultLagInterval when 0; negative: never). See reportLag.
	LagInterval time.Duration
}

// Defaults of the Consumer's options.
const (
	// DefaultCommitInterval is how often a Consumer commits the offsets of handled messages.
	DefaultCommitInterval = 500 * time.Millisecond
	DefaultMaxBatch       = 500
	DefaultBatchWait      = 5 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	// DefaultLagInterval is how often a Consumer refreshes sbor_kafka_consumer_lag from the
	// brokers.
	DefaultLagInterval = 10 * time.Second
)

// fetchMaxWait is how long the broker holds a fetch that finds no new message (a message
// that arrives meanwhile is answered at once: MinBytes is 1, so it adds no delay). Each
// owned partition is asked again that often when idle: the 15 partitions of the flash-sale
// benchmark's services cost an idle broker an eighth of a core. A longer wait costs the
// broker less but stops a consumer later: kafka-go cannot cancel a fetch in flight, so Run
// returns up to this long after its context ends (with 1 s, 20 runs of the notification
// service's TestConcurrentConsumersNotifyOnce, which starts and stops four services, took
// 72 s instead of 36). A longer wait also widened kafka-go's rebalance race
// (segmentio/kafka-go#1308), in which a late commit moved a partition's offset back; Run no
// longer lets a commit outlive its generation (group.go).
const fetchMaxWait = 250 * time.Millisecond

// messageContext derives the context one message is handled in from the consumer's. It is
// the one place where a message's own context is made (for both kinds of handler), so
// anything carried in message headers, such as trace context, belongs here.
func messageContext(ctx context.Context, msg kafka.Message) context.Context {
	return traceMessage(ctx, msg)
}

// handle runs the handler (with ctx) until every message of the batch is handled or failed
// permanently; false means live ended first (ctx, or the generation: the batch's partitions
// may be someone else's by now, so the retries are theirs to make).
func (c *Consumer) handle(ctx, live context.Context, o consumeOptions, batch []Message) bool {
	backoff := 100 * time.Millisecond
	pending := batch
	for attempt := 1; ; attempt++ {
		errs := o.handle(ctx, pending)
		if errs != nil && len(errs) != len(pending) {
			c.Log.Error("batch handler returned a wrong number of results; retrying the batch",
				"group", c.Group, "messages", len(pending), "results", len(errs))
			errs = make([]error, len(pending))
			for i := range errs {
				errs[i] = errors.New("no result for this message")
			}
		}
		var retry []Message
		var firstFailure []any
		failureCtx := ctx
		for i, msg := range pending {
			var err error
			if errs != nil {
				err = errs[i]
			}
			if err == nil {
				consumed.WithLabelValues(c.Group, msg.Topic, "ok").Inc()
				continue
			}
			if ctx.Err() != nil {
				return false
			}
			where := []any{"group", c.Group, "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "key", string(msg.Key)}
			recordFailure(msg.Ctx, err)
			if errors.Is(err, ErrPermanent) {
				c.Log.ErrorContext(msg.Ctx, "skipping message that cannot be handled", append(where, "err", err)...)
				if c.DeadLetter != nil {
					if dlErr := c.DeadLetter(msg.Ctx, msg.Message, err); dlErr != nil {
						c.Log.ErrorContext(msg.Ctx, "dead-letter store failed; retrying", append(where, "err", dlErr)...)
						retry = append(retry, msg)
						continue
					}
				}
				consumed.WithLabelValues(c.Group, msg.Topic, "skipped").Inc()
				continue
			}
			consumed.WithLabelValues(c.Group, msg.Topic, "error").Inc()
			if len(retry) == 0 { // one line per attempt, not one per message of a failed batch
				firstFailure = append(where, "attempt", attempt, "err", err)
				failureCtx = msg.Ctx
			}
			retry = append(retry, msg)
		}
		if len(retry) == 0 {
			return true
		}
		if firstFailure != nil {
			c.Log.WarnContext(failureCtx, "message handling failed; retrying", append(firstFailure, "failed_in_batch", len(retry))...)
		}
		if !sleep(live, backoff) {
			return false
		}
		backoff = min(backoff*2, o.maxBackoff)
		pending = retry
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
