// Package tracing sets up OpenTelemetry tracing for a Sbor process and carries trace context
// across the process boundaries the platform has: HTTP between services and Kafka messages
// written through the outbox.
//
// Tracing is off by default and configured only by the standard OTEL_* variables: it turns on
// when OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint is set, and exports OTLP over
// HTTP/protobuf. Whether it is on or not, a W3C tracecontext+baggage propagator is installed,
// so a trace started elsewhere (by an ingress, another service) still flows through a process
// that exports nothing: its logs carry the trace id and its outgoing calls and messages carry
// the traceparent.
//
// While tracing is off the instrumentation in web, kafkabus and Transport skips span creation
// altogether (one atomic load per request or message), so the default costs nothing worth
// measuring.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// instrumentationName names the tracer of Sbor's own spans (consumers, outbox).
const instrumentationName = "github.com/sbor-dev/sbor"

// enabled is true while a tracer provider with an exporter is installed.
var enabled atomic.Bool

// propagator is W3C tracecontext plus baggage: what every process injects and extracts,
// installed globally by Setup and used directly by this package, so propagation works even
// in code (tests) that never called Setup.
var propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Enabled reports whether spans are being recorded and exported. Instrumentation checks it per
// request, so that the default (tracing off) skips span bookkeeping entirely.
func Enabled() bool { return enabled.Load() }

// Propagator returns the W3C tracecontext+baggage propagator.
func Propagator() propagation.TextMapPropagator { return propagator }

// Tracer returns the tracer for Sbor's own spans.
func Tracer() trace.Tracer { return otel.Tracer(instrumentationName) }

// Option tunes Setup.
type Option func(*options)

type options struct {
	log    *slog.Logger
	getenv func(string) string
}

// WithLogger reports exporter failures (a collector that is down) to log instead of the
// OpenTelemetry default, which writes unstructured lines to stderr.
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// withEnv replaces os.Getenv, for tests.
func withEnv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }

// ShutdownTimeout bounds how long the shutdown function waits to flush buffered spans when
// its context has no deadline.
const ShutdownTimeout = 5 * time.Second

// Setup installs the propagator and, when the OTEL_* variables ask for it, a tracer provider
// exporting OTLP/HTTP for service (the service.name, unless OTEL_SERVICE_NAME says otherwise).
// The returned function flushes and stops the exporter; call it when the process ends. It is
// never nil.
//
// Variables honoured (by this function or by the SDK it configures):
//   - OTEL_SDK_DISABLED=true: off, whatever else is set.
//   - OTEL_TRACES_EXPORTER: "otlp" turns tracing on, "none" keeps it off; unset means on
//     exactly when an endpoint is set. Other exporters are refused.
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, _HEADERS, _TIMEOUT,
//     _COMPRESSION, _CERTIFICATE...: the exporter's target (http:// means no TLS).
//   - OTEL_EXPORTER_OTLP_PROTOCOL / _TRACES_PROTOCOL: only http/protobuf (the default).
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: the sampler (default parentbased_always_on).
//   - OTEL_BSP_*: the batch span processor (schedule delay, queue and batch sizes).
func Setup(ctx context.Context, service string, opts ...Option) (shutdown func(context.Context) error, err error) {
	o := options{getenv: os.Getenv}
	for _, opt := range opts {
		opt(&o)
	}
	otel.SetTextMapPropagator(propagator)
	noop := func(context.Context) error { return nil }
	on, err := exporterWanted(o.getenv)
	if err != nil || !on {
		return noop, err
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(o.getenv(name)); p != "" {
			if p != "http/protobuf" {
				return noop, fmt.Errorf("tracing: %s=%q is not supported: Sbor exports OTLP over http/protobuf (a collector's port 4318)", name, p)
			}
			break
		}
	}
	if o.log != nil {
		log := o.log
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: export failed", "err", err) }))
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the
	// default name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exporter.Shutdown(ctx)
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(provider)
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, ShutdownTimeout)
			defer cancel()
		}
		return provider.Shutdown(ctx)
	}, nil
}

// exporterWanted decides from the variables whether to export spans.
func exporterWanted(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
	default:
		return false, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q is not supported (otlp or none)", exp)
	}
}

// Inject writes ctx's trace context (traceparent, tracestate, baggage) into carrier. It writes
// nothing when ctx carries no valid span context.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	propagator.Inject(ctx, carrier)
}

// Extract returns ctx carrying the trace context found in carrier (as a remote parent).
func Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return propagator.Extract(ctx, carrier)
}

// TraceParent returns ctx's W3C traceparent and tracestate, or "" when ctx carries no valid
// span context: for a CloudEvent's distributed-tracing extension attributes.
func TraceParent(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"], carrier["tracestate"]
}

// Use installs provider as the global tracer provider and turns the instrumentation on, as
// Setup does with its exporter; restore puts back what was there. For tests (an in-memory
// exporter) and for programs that build their own provider.
func Use(provider trace.TracerProvider) (restore func()) {
	prevProvider, prevEnabled := otel.GetTracerProvider(), enabled.Load()
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagator)
	enabled.Store(true)
	return func() {
		otel.SetTracerProvider(prevProvider)
		enabled.Store(prevEnabled)
	}
}

// Provider returns a tracer provider that resolves the global one each time a span starts,
// for instrumentation built before Setup or Use ran (otelhttp picks its tracer when it is
// constructed, and otherwise falls back to the provider of the span in the request's context,
// which for a remote parent records nothing).
func Provider() trace.TracerProvider { return globalProvider{} }

type globalProvider struct{ embedded.TracerProvider }

func (globalProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return globalTracer{name: name, opts: opts}
}

type globalTracer struct {
	embedded.Tracer
	name string
	opts []trace.TracerOption
}

func (t globalTracer) Start(ctx context.Context, spanName string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return otel.GetTracerProvider().Tracer(t.name, t.opts...).Start(ctx, spanName, opts...)
}
