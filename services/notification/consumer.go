package notification

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
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
	out := make([]string, len(Consumed))
	for i, t := range Consumed {
		out[i] = prefix + t
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
	ev, src, err := h.decode(msg)
	if err != nil {
		return err
	}
	if Type(ev.Type) == TypeTicketPurchased {
		p, err := purchaseOf(ev, src)
		if err != nil {
			return err
		}
		return refusedData(h.Core.TicketsPurchased(ctx, []Purchase{p}))
	}
	return h.handleEvent(ctx, ev, src)
}

// HandleBatch handles the messages the consumer fetched together: the purchases with one
// insert for all of them, then the other events one at a time. When the database is
// unavailable the insert fails every purchase of the batch (none was stored), to be retried
// together; any other failure of the insert is retried one purchase at a time at once, and a
// purchase whose data the database refuses is parked (refusedData).
func (h *MessageHandler) HandleBatch(ctx context.Context, batch []kafkabus.Message) []error {
	results := make([]error, len(batch))
	purchases := make([]Purchase, 0, len(batch))
	var purchaseAt, others []int
	events := make([]cloudevent.Event, len(batch))
	sources := make([]Source, len(batch))
	for i, m := range batch {
		ev, src, err := h.decode(m.Message)
		if err != nil {
			results[i] = err
			continue
		}
		if Type(ev.Type) != TypeTicketPurchased {
			events[i], sources[i] = ev, src
			others = append(others, i)
			continue
		}
		p, err := purchaseOf(ev, src)
		if err != nil {
			results[i] = err
			continue
		}
		purchases = append(purchases, p)
		purchaseAt = append(purchaseAt, i)
	}
	if len(purchases) > 0 {
		err := h.Core.TicketsPurchased(ctx, purchases)
		switch {
		case err == nil:
		case errs.Is(err, errs.Unavailable):
			for _, i := range purchaseAt {
				results[i] = err
			}
		case len(purchases) == 1:
			results[purchaseAt[0]] = refusedData(err)
		default:
			// Not the database being away: perhaps one purchase the database refuses. Insert
			// them one by one, so that one does not hold back the others.
			for j, i := range purchaseAt {
				results[i] = refusedData(h.Core.TicketsPurchased(batch[i].Ctx, purchases[j:j+1]))
			}
		}
	}
	for _, i := range others {
		results[i] = h.handleEvent(batch[i].Ctx, events[i], sources[i])
	}
	return results
}

// refusedData makes the database's refusal of the data itself (SQLSTATE class 22, such as a
// NUL byte in a text) a permanent failure: storing the same data again cannot succeed, and
// retrying it would hold back its partition for good.
func refusedData(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
		return kafkabus.Permanent(err)
	}
	return err
}

// decode reads a message's CloudEvent and checks that it travelled on its own type's topic;
// a message that fails either never will be handled (a permanent error).
func (h *MessageHandler) decode(msg kafka.Message) (cloudevent.Event, Source, error) {
	ev, err := cloudevent.Decode(msg.Value)
	if err != nil {
		return ev, Source{}, kafkabus.Permanent(err)
	}
	if topicType, ok := strings.CutPrefix(msg.Topic, h.TopicPrefix); !ok || topicType != ev.Type {
		return ev, Source{}, kafkabus.Permanent(fmt.Errorf("%w: type %q on topic %q", cloudevent.ErrInvalid, ev.Type, msg.Topic))
	}
	return ev, Source{ID: ev.ID, Time: ev.Time}, nil
}

// purchaseOf reads a ticket.purchased event's data; data that cannot be notified is a
// permanent error.
func purchaseOf(ev cloudevent.Event, src Source) (Purchase, error) {
	var d cloudevent.TicketData
	if err := ev.DecodeData(&d); err != nil {
		return Purchase{}, kafkabus.Permanent(err)
	}
	if err := ValidatePurchase(d); err != nil {
		return Purchase{}, kafkabus.Permanent(err)
	}
	return Purchase{Source: src, Ticket: d}, nil
}

// handleEvent handles an event other than a purchase.
func (h *MessageHandler) handleEvent(ctx context.Context, ev cloudevent.Event, src Source) error {
	var err error
	switch Type(ev.Type) {
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
	case Type(cloudevent.TypeTicketTransferred):
		var d cloudevent.TicketTransferData
		if err := ev.DecodeData(&d); err != nil {
			return kafkabus.Permanent(err)
		}
		// Text the database refuses (a NUL byte in a title) is permanent, as for purchases.
		err = refusedData(h.Core.TicketTransferred(ctx, src, d))
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
	h.Log.WarnContext(ctx, "message parked in dead_letters", "where", kafkabus.Where(msg), "err", cause)
	return nil
}

// cleanText makes s storable as PostgreSQL text: valid UTF-8 without NUL bytes.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// Batching of the consumer: the purchases fetched together are notified with one insert,
// one commit. A lone message waits BatchWait for company; at the peak of a sale the batch
// fills from the backlog at once. See kafkabus.BatchHandler. Nobody waits on a notification
// the way a buyer waits on a purchase, so BatchWait matches the outbox relay's interval
// (outbox.DefaultMinInterval, where the measurement is).
const (
	MaxBatch  = 500
	BatchWait = 25 * time.Millisecond
)

// NewConsumer returns the Kafka consumer of the service's topics, in the given group.
func NewConsumer(h *MessageHandler, brokers []string, group string) *kafkabus.Consumer {
	if group == "" {
		group = DefaultConsumerGroup
	}
	return &kafkabus.Consumer{
		Brokers: brokers, Group: group, Topics: Topics(h.TopicPrefix),
		Handler: h.Handle, BatchHandler: h.HandleBatch, MaxBatch: MaxBatch, BatchWait: BatchWait,
		DeadLetter: h.DeadLetter, Log: h.Log, MaxBackoff: 5 * time.Second,
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
