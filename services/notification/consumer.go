package notification

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
)

// DefaultConsumerGroup is the consumer group every replica of the service joins, so Kafka
// hands each partition to one of them.
const DefaultConsumerGroup = "sbor-notification"

// Topics returns the topics the service consumes under a topic prefix.
func Topics(prefix string) []string {
	out := make([]string, len(Types))
	for i, t := range Types {
		out[i] = prefix + string(t)
	}
	return out
}

// MessageHandler turns consumed Kafka messages into Core calls. A message that can never be
// handled is a kafkabus.Permanent error (parked by DeadLetter, then skipped); any other error
// leaves the message uncommitted, to be retried with backoff.
type MessageHandler struct {
	Core  *Core
	Store *Store
	// TopicPrefix is the prefix of the topic names (SBOR_KAFKA_TOPIC_PREFIX).
	TopicPrefix string
	Log         *slog.Logger
}

// Handle handles one message.
func (h *MessageHandler) Handle(ctx context.Context, msg kafka.Message) error {
	ev, err := cloudevent.Decode(msg.Value)
	if err != nil {
		return kafkabus.Permanent(err)
	}
	if topicType, ok := strings.CutPrefix(msg.Topic, h.TopicPrefix); !ok || topicType != ev.Type {
		return kafkabus.Permanent(fmt.Errorf("%w: type %q on topic %q", cloudevent.ErrInvalid, ev.Type, msg.Topic))
	}
	src := Source{ID: ev.ID, Time: ev.Time}
	switch Type(ev.Type) {
	case TypeTicketPurchased:
		var d cloudevent.TicketData
		if err := ev.DecodeData(&d); err != nil {
			return kafkabus.Permanent(err)
		}
		err = h.Core.TicketPurchased(ctx, src, d)
	case TypeEventCancelled:
		var d cloudevent.EventData
		if err := ev.DecodeData(&d); err != nil {
			return kafkabus.Permanent(err)
		}
		err = h.Core.EventCancelled(ctx, src, d)
	case TypeEventReminder:
		var d cloudevent.EventData
		if err := ev.DecodeData(&d); err != nil {
			return kafkabus.Permanent(err)
		}
		err = h.Core.EventReminder(ctx, src, d)
	default:
		return kafkabus.Permanent(fmt.Errorf("%w: unknown type %q", cloudevent.ErrInvalid, ev.Type))
	}
	if errs.Is(err, errs.Invalid) {
		return kafkabus.Permanent(err)
	}
	return err
}

// DeadLetter parks a message that failed permanently in the dead_letters table. If that
// fails the consumer retries, so a poison message is never skipped without a trace.
func (h *MessageHandler) DeadLetter(ctx context.Context, msg kafka.Message, cause error) error {
	err := h.Store.AddDeadLetter(ctx, DeadLetter{
		Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Key: msg.Key, Payload: msg.Value, Error: cleanText(cause.Error()),
	})
	if err != nil {
		return err
	}
	deadLettersTotal.WithLabelValues(msg.Topic).Inc()
	h.Log.Warn("message parked in dead_letters", "where", kafkabus.Where(msg), "err", cause)
	return nil
}

// cleanText makes s storable as PostgreSQL text: valid UTF-8 without NUL bytes.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// NewConsumer returns the Kafka consumer of the service's topics, in the given group.
func NewConsumer(h *MessageHandler, brokers []string, group string) *kafkabus.Consumer {
	if group == "" {
		group = DefaultConsumerGroup
	}
	return &kafkabus.Consumer{
		Brokers: brokers, Group: group, Topics: Topics(h.TopicPrefix),
		Handler: h.Handle, DeadLetter: h.DeadLetter, Log: h.Log, MaxBackoff: 5 * time.Second,
	}
}

// waitForTopics returns once every topic exists, checking every interval. A consumer group
// that joins before its topics exist is assigned no partitions, and kafka-go does not
// notice them appear later; the producers (or the operator) create the topics.
func waitForTopics(ctx context.Context, log *slog.Logger, brokers, topics []string, interval time.Duration) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	logged := false
	for {
		missing, err := missingTopics(ctx, client, topics)
		if err == nil && len(missing) == 0 {
			if logged {
				log.Info("kafka topics are ready", "topics", topics)
			}
			return nil
		}
		if !logged {
			log.Warn("waiting for kafka topics before consuming", "missing", missing, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func missingTopics(ctx context.Context, client *kafka.Client, topics []string) ([]string, error) {
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return topics, err
	}
	ok := map[string]bool{}
	for _, t := range resp.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			ok[t.Name] = true
		}
	}
	var missing []string
	for _, t := range topics {
		if !ok[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}
