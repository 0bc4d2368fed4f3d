package kafkabus

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/logging"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// HeaderCarrier adapts a Kafka message's headers to OpenTelemetry propagation (a
// propagation.TextMapCarrier): the outbox relay publishes traceparent, tracestate and baggage
// as headers, and consumers extract them.
type HeaderCarrier struct{ Headers *[]kafka.Header }

// Get returns the value of key; header names are matched exactly first, then ignoring case.
func (c HeaderCarrier) Get(key string) string {
	for _, h := range *c.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	for _, h := range *c.Headers {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the value of key, or adds the header.
func (c HeaderCarrier) Set(key, value string) {
	for i, h := range *c.Headers {
		if strings.EqualFold(h.Key, key) {
			(*c.Headers)[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(*c.Headers, kafka.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, len(*c.Headers))
	for i, h := range *c.Headers {
		keys[i] = h.Key
	}
	return keys
}

// traceMessage returns the context to handle msg in: it carries the message's request id and
// trace context and, while tracing is on, a consumer span "process <topic>", a child of the
// context that wrote the message (see endMessageSpans). With tracing off it only extracts, so
// the handler's logs and onward calls still carry the producer's trace id.
func traceMessage(ctx context.Context, msg kafka.Message) context.Context {
	carrier := HeaderCarrier{Headers: &msg.Headers}
	if id := carrier.Get(identity.HeaderRequestID); id != "" {
		ctx = logging.WithRequestID(ctx, id)
	}
	if !tracing.Enabled() {
		if carrier.Get("traceparent") != "" || carrier.Get("baggage") != "" {
			ctx = tracing.Extract(ctx, carrier)
		}
		return ctx
	}
	ctx = tracing.Extract(ctx, carrier)
	ctx, _ = tracing.Tracer().Start(ctx, "process "+msg.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.name", msg.Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(msg.Partition)),
			attribute.Int64("messaging.kafka.offset", msg.Offset),
			attribute.String("messaging.kafka.message.key", string(msg.Key)),
		))
	return ctx
}

// recordFailure notes a failed attempt on the message's span; a message skipped as
// permanently failed ends in error.
func recordFailure(ctx context.Context, err error) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.RecordError(err)
		if errors.Is(err, ErrPermanent) {
			span.SetStatus(codes.Error, err.Error())
		}
	}
}

// endMessageSpans ends the spans traceMessage started, once the batch is handled (or the
// consumer stops).
func endMessageSpans(batch []Message) {
	for _, m := range batch {
		if span := trace.SpanFromContext(m.Ctx); span.IsRecording() {
			span.End()
		}
	}
}
