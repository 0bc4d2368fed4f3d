package ticket

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
)

// DefaultConsumerGroup is the Kafka consumer group of the ticket service's replicas.
const DefaultConsumerGroup = "sbor-ticket"

// CancellationHandler handles event.cancelled: it records the cancellation and cancels the
// event's active tickets in one transaction (Store.CancelEvent), so a redelivered message
// changes nothing. A message that is not a valid event.cancelled is permanent: retrying it
// cannot help, so it is logged and skipped. A database failure is retried.
func CancellationHandler(store *Store, log *slog.Logger) kafkabus.Handler {
	return cancellationHandler(store, log, nil)
}

// cancellationHandler is CancellationHandler calling recorded once a cancellation is
// recorded (Core.EventCancelled, which refuses the event's purchases from then on).
func cancellationHandler(store *Store, log *slog.Logger, recorded func(eventID uuid.UUID)) kafkabus.Handler {
	return func(ctx context.Context, msg kafka.Message) error {
		ev, err := cloudevent.Decode(msg.Value)
		if err != nil {
			return kafkabus.Permanent(err)
		}
		if ev.Type != cloudevent.TypeEventCancelled {
			return kafkabus.Permanent(fmt.Errorf("%w: type %q on %s", cloudevent.ErrInvalid, ev.Type, kafkabus.Where(msg)))
		}
		var data cloudevent.EventData
		if err := ev.DecodeData(&data); err != nil {
			return kafkabus.Permanent(err)
		}
		if data.EventID == uuid.Nil || data.OrganizerID == uuid.Nil {
			return kafkabus.Permanent(fmt.Errorf("%w: event.cancelled without event_id or organizer_id", cloudevent.ErrInvalid))
		}
		if data.Status != "" && data.Status != EventCancelled {
			return kafkabus.Permanent(fmt.Errorf("%w: event.cancelled with status %q", cloudevent.ErrInvalid, data.Status))
		}
		at := ev.Time
		if at.IsZero() {
			at = msg.Time
		}
		n, err := store.CancelEvent(ctx, data.EventID, data.OrganizerID, at.UTC())
		if err != nil {
			return err
		}
		if recorded != nil {
			recorded(data.EventID)
		}
		log.InfoContext(ctx, "event cancelled", "event_id", data.EventID, "tickets_cancelled", n, "message_id", ev.ID)
		return nil
	}
}
