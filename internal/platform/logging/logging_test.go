package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/logging"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func spanContext(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

func TestContextHandlerAddsRequestAndTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "info", "json")
	ctx, sc := spanContext(t)
	ctx = logging.WithRequestID(ctx, "req-1")

	log.InfoContext(ctx, "with both")
	log.InfoContext(logging.WithRequestID(context.Background(), "req-2"), "request only")
	log.Info("no context")
	log.With(logging.RequestIDKey, "req-1").InfoContext(ctx, "logger already has the request id")

	got := lines(t, &buf)
	if len(got) != 4 {
		t.Fatalf("%d lines: %s", len(got), buf.String())
	}
	if got[0]["request_id"] != "req-1" || got[0]["trace_id"] != sc.TraceID().String() || got[0]["span_id"] != sc.SpanID().String() {
		t.Errorf("line with a request and a span: %v", got[0])
	}
	if got[1]["request_id"] != "req-2" || got[1]["trace_id"] != nil || got[1]["span_id"] != nil {
		t.Errorf("line with a request only: %v", got[1])
	}
	if got[2]["request_id"] != nil || got[2]["trace_id"] != nil {
		t.Errorf("line without a context: %v", got[2])
	}
	if n := strings.Count(strings.Split(buf.String(), "\n")[3], `"request_id"`); n != 1 {
		t.Errorf("request_id appears %d times on a line whose logger carries it: %s", n, strings.Split(buf.String(), "\n")[3])
	}
	if got[3]["trace_id"] != sc.TraceID().String() {
		t.Errorf("line of a logger with attributes lost the trace id: %v", got[3])
	}
}

func TestContextHandlerHonoursLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "warn", "text")
	ctx, sc := spanContext(t)
	log.InfoContext(ctx, "below the level")
	log.WarnContext(ctx, "at the level")
	out := buf.String()
	if strings.Contains(out, "below the level") || !strings.Contains(out, "at the level") {
		t.Fatalf("level not honoured: %q", out)
	}
	if !strings.Contains(out, "trace_id="+sc.TraceID().String()) {
		t.Fatalf("text line without trace_id: %q", out)
	}
}
