package kafkabus

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/logging"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

var _ propagation.TextMapCarrier = HeaderCarrier{}

func TestHeaderCarrierSetGetKeys(t *testing.T) {
	headers := []kafka.Header{{Key: "Traceparent", Value: []byte("old")}, {Key: "x", Value: []byte("1")}}
	c := HeaderCarrier{Headers: &headers}
	c.Set("traceparent", "new") // replaces, whatever the case
	c.Set("tracestate", "a=b")  // adds
	if got := c.Get("traceparent"); got != "new" {
		t.Fatalf("traceparent = %q", got)
	}
	if got := c.Get("TRACESTATE"); got != "a=b" {
		t.Fatalf("tracestate = %q", got)
	}
	if got := c.Get("missing"); got != "" {
		t.Fatalf("missing = %q", got)
	}
	if keys := c.Keys(); len(keys) != 3 || len(headers) != 3 {
		t.Fatalf("keys %v, headers %v", keys, headers)
	}
}

func TestTraceContextRoundTripsThroughHeaders(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	var msg kafka.Message
	tracing.Inject(ctx, HeaderCarrier{Headers: &msg.Headers})
	msg.Headers = append(msg.Headers, kafka.Header{Key: "X-Request-ID", Value: []byte("req-9")})
	if Header(msg, "traceparent") != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("headers: %v", msg.Headers)
	}

	// Tracing is off in this test: the consumer's context still gets the producer's trace
	// (as a remote parent) and request id, so its log lines carry them.
	got := traceMessage(context.Background(), msg)
	gsc := trace.SpanContextFromContext(got)
	if gsc.TraceID() != tid || gsc.SpanID() != sid || !gsc.IsRemote() {
		t.Fatalf("extracted span context: %+v", gsc)
	}
	if logging.RequestID(got) != "req-9" {
		t.Fatalf("request id: %q", logging.RequestID(got))
	}
	// A message without trace headers leaves the context alone.
	if plain := traceMessage(context.Background(), kafka.Message{}); trace.SpanContextFromContext(plain).IsValid() {
		t.Fatal("a message without headers got a span context")
	}
}
