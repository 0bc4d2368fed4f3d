package outbox

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/logging"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func tracedContext() context.Context {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return logging.WithRequestID(trace.ContextWithSpanContext(context.Background(), sc), "req-1")
}

func TestWithTraceContextAddsHeadersWithoutTouchingTheCallers(t *testing.T) {
	own := map[string]string{"x": "1"}
	m := WithTraceContext(tracedContext(), Message{Topic: "t", Headers: own})
	if m.Headers["traceparent"] != traceparent || m.Headers[RequestIDHeader] != "req-1" || m.Headers["x"] != "1" {
		t.Fatalf("headers: %v", m.Headers)
	}
	if len(own) != 1 {
		t.Fatalf("the caller's map was modified: %v", own)
	}
	// Headers a message already has win.
	m = WithTraceContext(tracedContext(), Message{Headers: map[string]string{"traceparent": "mine"}})
	if m.Headers["traceparent"] != "mine" {
		t.Fatalf("explicit traceparent replaced: %v", m.Headers)
	}
	// No trace, no request: nothing added, nothing allocated.
	if m := WithTraceContext(context.Background(), Message{}); m.Headers != nil {
		t.Fatalf("headers without a trace: %v", m.Headers)
	}
}

func TestRelayLiftsTheCloudEventTraceExtensionIntoHeaders(t *testing.T) {
	ev, err := cloudevent.New("test", cloudevent.TypeTicketPurchased, "s", cloudevent.Event{}.Time, map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := FromEvent("k", ev, nil)
	if h := appendEventTraceContext(nil, plain.Payload); len(h) != 0 {
		t.Fatalf("headers from an event without trace context: %v", h)
	}
	ev.TraceParent, ev.TraceState = traceparent, "v=1"
	traced, _ := FromEvent("k", ev, nil)
	h := appendEventTraceContext([]kafka.Header{{Key: "x", Value: []byte("1")}}, traced.Payload)
	if len(h) != 3 || h[1].Key != "traceparent" || string(h[1].Value) != traceparent || string(h[2].Value) != "v=1" {
		t.Fatalf("headers: %v", h)
	}
	if _, err := cloudevent.Decode(traced.Payload); err != nil {
		t.Fatalf("an event with the extension does not decode: %v", err)
	}
}
