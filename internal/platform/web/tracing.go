package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// TraceOption tunes Trace.
type TraceOption func(*traceOptions)

type traceOptions struct {
	untrusted func(*http.Request) bool
}

// UntrustedPeer marks requests whose trace headers must not be believed (the gateway's
// public clients): their traceparent, tracestate and baggage are deleted, so the request
// starts a new trace and a client can neither join nor force-sample the platform's traces.
func UntrustedPeer(untrusted func(*http.Request) bool) TraceOption {
	return func(o *traceOptions) { o.untrusted = untrusted }
}

// Trace makes each request a server span named by its method and route template (for
// example "GET /api/events/{id}"), the child of the caller's span when the request carries a
// traceparent. While tracing is off (the default) it only puts an incoming trace context into
// the request context, so logs and onward calls still carry the trace; a request without
// trace headers then costs one atomic load and two header lookups. Health probes are not
// traced.
func Trace(opts ...TraceOption) func(http.Handler) http.Handler {
	var o traceOptions
	for _, opt := range opts {
		opt(&o)
	}
	return func(next http.Handler) http.Handler {
		traced := otelhttp.NewMiddleware("http.server",
			otelhttp.WithPropagators(tracing.Propagator()),
			otelhttp.WithTracerProvider(tracing.Provider()),
			otelhttp.WithFilter(notProbe),
		)(nameSpan(next))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if o.untrusted != nil && tracing.HasTraceHeaders(r.Header) && o.untrusted(r) {
				tracing.StripTraceHeaders(r.Header)
			}
			if tracing.Enabled() {
				traced.ServeHTTP(w, r)
				return
			}
			if tracing.HasTraceHeaders(r.Header) {
				r = r.WithContext(tracing.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// notProbe keeps liveness and readiness probes, which arrive every few seconds, out of the
// traces.
func notProbe(r *http.Request) bool {
	return r.URL.Path != "/healthz" && r.URL.Path != "/readyz"
}

// nameSpan renames the server span once the router has matched the route: otelhttp starts it
// before routing, when only the method is known.
func nameSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		span := trace.SpanFromContext(r.Context())
		if !span.IsRecording() {
			return
		}
		if rc := chi.RouteContext(r.Context()); rc != nil {
			if route := rc.RoutePattern(); route != "" {
				span.SetName(r.Method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
		}
	})
}
