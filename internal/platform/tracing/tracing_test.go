package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestExporterWanted(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		want    bool
		wantErr bool
	}{
		{env: nil, want: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: false},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, want: false},
		{env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "OTLP"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: true},
	} {
		got, err := exporterWanted(env(tc.env))
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%v: got %v, %v; want %v (error %v)", tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSetupStaysOffByDefaultAndRefusesGRPC(t *testing.T) {
	shutdown, err := Setup(context.Background(), "sbor-test", withEnv(env(nil)))
	if err != nil || shutdown == nil || Enabled() {
		t.Fatalf("default Setup: err %v, enabled %v", err, Enabled())
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = Setup(context.Background(), "sbor-test", withEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	})))
	if err == nil || Enabled() {
		t.Fatalf("grpc protocol: err %v, enabled %v", err, Enabled())
	}
}

func remoteContext() (context.Context, trace.SpanContext) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

// With tracing off, a trace that flows through a process still reaches the next one.
func TestTransportPropagatesWhileTracingIsOff(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("traceparent"))
	}))
	defer srv.Close()
	client := &http.Client{Transport: Transport(nil)}
	ctx, _ := remoteContext()
	for _, c := range []context.Context{ctx, context.Background()} {
		req, _ := http.NewRequestWithContext(c, http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Header.Get("traceparent") != "" {
			t.Fatal("the caller's request was modified")
		}
	}
	if len(got) != 2 || got[0] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || got[1] != "" {
		t.Fatalf("traceparent received: %q", got)
	}
	client.CloseIdleConnections()
}

// With tracing on, each call is a client span whose id is the callee's parent.
func TestTransportRecordsClientSpans(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer Use(provider)()
	var parent string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		parent = r.Header.Get("traceparent")
	}))
	defer srv.Close()
	ctx, sc := remoteContext()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: Transport(nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans := exporter.GetSpans()
	if len(spans) != 1 || spans[0].SpanKind != trace.SpanKindClient || spans[0].Parent.SpanID() != sc.SpanID() {
		t.Fatalf("spans: %+v", spans)
	}
	if want := "00-" + sc.TraceID().String() + "-" + spans[0].SpanContext.SpanID().String() + "-01"; parent != want {
		t.Fatalf("callee saw traceparent %q, want %q", parent, want)
	}
}

func TestTraceParent(t *testing.T) {
	if tp, ts := TraceParent(context.Background()); tp != "" || ts != "" {
		t.Fatalf("no span: %q %q", tp, ts)
	}
	ctx, _ := remoteContext()
	if tp, _ := TraceParent(ctx); tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent %q", tp)
	}
}
