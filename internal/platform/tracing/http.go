package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Transport wraps base (http.DefaultTransport when nil) for calls to other services: every
// request carries the caller's trace context (traceparent, tracestate, baggage), and while
// tracing is on each call is a client span (otelhttp) whose context is what the callee sees.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, traced: otelhttp.NewTransport(base, otelhttp.WithPropagators(propagator), otelhttp.WithTracerProvider(Provider()))}
}

type transport struct {
	base   http.RoundTripper
	traced http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if enabled.Load() {
		return t.traced.RoundTrip(r)
	}
	ctx := r.Context()
	if !Carries(ctx) {
		return t.base.RoundTrip(r)
	}
	// Tracing is off here but a trace flows through (an upstream started it): pass it on.
	// A RoundTripper must not modify its request, so the headers go on a copy.
	out := r.Clone(ctx)
	propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return t.base.RoundTrip(out)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the wrapped transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// HasTraceHeaders reports whether h carries a trace context or baggage to extract, so the
// untraced path can skip extraction when there is nothing to extract.
func HasTraceHeaders(h http.Header) bool {
	// Canonical keys, looked up directly: Header.Get would canonicalize (and allocate) on
	// every request.
	return len(h["Traceparent"]) > 0 || len(h["Baggage"]) > 0
}

// StripTraceHeaders deletes the propagation headers: the gateway does so for requests from
// untrusted peers, so a client can neither join nor force-sample the platform's traces.
func StripTraceHeaders(h http.Header) {
	for _, name := range traceHeaders {
		h.Del(name)
	}
}

// traceHeaders are the propagator's header names, computed once: the composite propagator
// builds a new list on every Fields call, and the gateway strips them from every request.
var traceHeaders = propagator.Fields()

// TraceHeaders returns the names of the headers the propagator reads and writes
// (traceparent, tracestate, baggage). The slice is shared: do not modify it.
func TraceHeaders() []string { return traceHeaders }

// Carries reports whether ctx holds a trace context or baggage to pass on to a callee.
func Carries(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).IsValid() || baggage.FromContext(ctx).Len() > 0
}

// StartClientSpan starts the client span of a call made with an HTTP client other than
// net/http's (the gateway's forwarder), as Transport does for net/http's; span is nil while
// tracing is off. The caller injects the returned context into the call's headers with
// Propagator when Carries(ctx), and ends the span with EndClientSpan.
func StartClientSpan(ctx context.Context, method, host, path string) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, nil
	}
	return Tracer().Start(ctx, method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("http.request.method", method),
		attribute.String("server.address", host),
		attribute.String("url.path", path),
	))
}

// EndClientSpan records the call's outcome (the answer's status, or the error that left
// none) and ends span.
func EndClientSpan(span trace.Span, status int, err error) {
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	default:
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}
