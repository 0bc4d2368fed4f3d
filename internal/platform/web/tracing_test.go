package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/tracing"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestRouterSpansAreNamedByRouteTemplate(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	defer tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter)))()
	r := web.NewRouter(slog.New(slog.DiscardHandler), web.Service("trace-test"))
	var inHandler trace.SpanContext
	r.Get("/things/{id}", func(w http.ResponseWriter, req *http.Request) {
		inHandler = trace.SpanContextFromContext(req.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	web.MountHealth(r, nil)
	req := httptest.NewRequest("GET", "/things/42", nil)
	req.Header.Set("traceparent", parent)
	r.ServeHTTP(httptest.NewRecorder(), req)
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))

	spans := exporter.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans (probes must not be traced): %+v", len(spans), spans)
	}
	s := spans[0]
	if s.Name != "GET /things/{id}" || s.SpanKind != trace.SpanKindServer {
		t.Fatalf("span %q kind %v", s.Name, s.SpanKind)
	}
	if s.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("span's parent %v is not the caller's", s.Parent)
	}
	if inHandler.SpanID() != s.SpanContext.SpanID() {
		t.Fatal("the handler does not run in the server span")
	}
}

func TestUntrustedPeersStartANewTrace(t *testing.T) {
	var seen trace.SpanContext
	var header string
	h := web.Trace(web.UntrustedPeer(func(*http.Request) bool { return true }))(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen, header = trace.SpanContextFromContext(r.Context()), r.Header.Get("traceparent")
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", parent)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen.IsValid() || header != "" {
		t.Fatalf("an untrusted caller's trace was joined: %v %q", seen, header)
	}
}

// Tracing off: the handler still runs in the caller's trace (for logs and onward calls).
func TestTracingOffStillExtracts(t *testing.T) {
	var seen trace.SpanContext
	h := web.Trace()(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = trace.SpanContextFromContext(r.Context())
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", parent)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !seen.IsRemote() {
		t.Fatalf("span context in the handler: %+v", seen)
	}
}

// BenchmarkRouter is a request through the standard middleware (tracing off).
func BenchmarkRouter(b *testing.B) {
	r := web.NewRouter(slog.New(slog.DiscardHandler), web.Service("bench"))
	r.Get("/things/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	req := httptest.NewRequest("GET", "/things/42", nil)
	b.ReportAllocs()
	for b.Loop() {
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// BenchmarkTraceOff is the tracing middleware alone with tracing off (the default) and no
// trace headers: what every request pays for the feature.
func BenchmarkTraceOff(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	req := httptest.NewRequest("GET", "/things/42", nil)
	w := httptest.NewRecorder()
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", noop}, {"traced", web.Trace()(noop)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}
