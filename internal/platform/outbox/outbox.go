// Package outbox is the transactional outbox: a service writes the messages a state change
// must announce into its own database, in the same transaction as the change, and a Relay
// publishes them to Kafka afterwards, in commit order, at least once.
//
// A committed change is therefore never without its message, and a Kafka outage delays
// messages instead of failing requests. Consumers must be idempotent.
//
// Messages carry the trace context of the change that wrote them (W3C traceparent,
// tracestate and baggage headers, see WithTraceContext) and its request id, so a consumer's
// span and logs continue the trace of the request that caused them.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/logging"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// RequestIDHeader carries the request id of the change that wrote a message.
const RequestIDHeader = "X-Request-ID"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the outbox schema, with its own version table, for db.Migrate.
func Migrations() db.Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations")
	return db.Migrations{Table: "goose_outbox_version", FS: sub}
}

// Message is one record to publish.
type Message struct {
	Topic   string
	Key     string
	Payload []byte
	Headers map[string]string
}

// FromEvent makes the message for a CloudEvent on the topic named by its type, keyed by key.
func FromEvent(key string, ev cloudevent.Event, headers map[string]string) (Message, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return Message{}, fmt.Errorf("marshal cloudevent: %w", err)
	}
	return Message{Topic: ev.Type, Key: key, Payload: payload, Headers: headers}, nil
}

// WithTraceContext returns m with ctx's trace context (traceparent, tracestate, baggage) and
// request id added to its headers; headers m already has are kept, and m's map is not
// modified. Add does this itself with its own ctx; call it where a message is prepared in a
// request's context but written from another (a batch shared by several requests).
func WithTraceContext(ctx context.Context, m Message) Message {
	m.Headers = withTraceContext(ctx, m.Headers)
	return m
}

func withTraceContext(ctx context.Context, h map[string]string) map[string]string {
	requestID := logging.RequestID(ctx)
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 && requestID == "" {
		return h
	}
	carrier := propagation.MapCarrier{}
	tracing.Inject(ctx, carrier)
	if requestID != "" {
		carrier[RequestIDHeader] = requestID
	}
	out := maps.Clone(h)
	if out == nil {
		out = make(map[string]string, len(carrier))
	}
	for k, v := range carrier {
		if _, set := out[k]; !set {
			out[k] = v
		}
	}
	return out
}

// Add inserts messages in tx with one statement. Each message gets ctx's trace context and
// request id in its headers (see WithTraceContext), which the relay publishes as Kafka
// headers.
func Add(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	topics := make([]string, len(msgs))
	keys := make([]string, len(msgs))
	payloads := make([][]byte, len(msgs))
	headers := make([]string, len(msgs))
	for i, m := range msgs {
		topics[i], keys[i], payloads[i] = m.Topic, m.Key, m.Payload
		h := withTraceContext(ctx, m.Headers)
		if h == nil {
			h = map[string]string{}
		}
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		headers[i] = string(b)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO outbox (topic, key, payload, headers)
		SELECT t, k, p, h FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[]) WITH ORDINALITY AS m(t, k, p, h, n)
		ORDER BY n`, topics, keys, payloads, headers)
	if err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}
