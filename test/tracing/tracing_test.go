// Package tracing proves that a purchase is one trace across the platform: the sbor binary's
// processes export spans over OTLP/HTTP to a receiver the test runs, and the spans of the
// gateway, the ticket service and the notification service's Kafka consumer share the
// purchase's trace id, the consumer's span descending from the gateway's. It also proves that
// the ticket service's log lines for the request carry that trace id and the request id.
package tracing

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sbor-dev/sbor/internal/testkit"
	"github.com/sbor-dev/sbor/test/platform"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// span is what the test keeps of an exported span.
type span struct {
	Service, Name       string
	TraceID, ID, Parent string
	Kind                tracepb.Span_SpanKind
	Attributes          map[string]string
}

// receiver is a minimal OTLP/HTTP trace receiver: POST /v1/traces with a protobuf
// ExportTraceServiceRequest.
type receiver struct {
	mu    sync.Mutex
	spans []span
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, kv := range s.GetAttributes() {
					attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				got = append(got, span{
					Service: service, Name: s.GetName(), Kind: s.GetKind(), Attributes: attrs,
					TraceID: hex.EncodeToString(s.GetTraceId()), ID: hex.EncodeToString(s.GetSpanId()),
					Parent: hex.EncodeToString(s.GetParentSpanId()),
				})
			}
		}
	}
	rc.mu.Lock()
	rc.spans = append(rc.spans, got...)
	rc.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (rc *receiver) snapshot() []span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]span(nil), rc.spans...)
}

func TestPurchaseIsOneTraceFromGatewayToNotification(t *testing.T) {
	rc := &receiver{}
	collector := httptest.NewServer(rc)
	defer collector.Close()

	p := platform.Start(t, platform.Options{Env: map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "50",
		// The access log (debug) is the ticket service's line for every request.
		"SBOR_LOG_LEVEL": "debug",
	}})

	org := p.Organizer("Olga")
	start := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	ev := org.Must(201, "POST", "/api/events", map[string]any{
		"title": "Traced", "description": "d", "venue": "v",
		"starts_at": start.UTC().Format(time.RFC3339), "ends_at": start.Add(time.Hour).UTC().Format(time.RFC3339),
	})
	eventID := ev.JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+eventID+"/publish", nil)
	tt := org.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", map[string]any{
		"type": "standard", "price_cents": 100, "currency": "EUR", "quantity": 5,
		"sales_start": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"sales_end":   start.Add(-time.Hour).UTC().Format(time.RFC3339),
	})
	ann := p.SignUp("Ann")
	bought := ann.Must(201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": tt.JSON["id"].(string)})
	requestID := bought.Header.Get("X-Request-ID")
	if requestID == "" {
		t.Fatal("the purchase's answer has no X-Request-ID")
	}

	// The gateway's span of the purchase is the root of its trace.
	const route = "POST /api/events/{id}/tickets"
	var root span
	platform.Eventually(t, 20*time.Second, "the gateway's span of the purchase", func() bool {
		for _, s := range rc.snapshot() {
			if s.Service == "sbor-gateway" && s.Name == route && s.Kind == tracepb.Span_SPAN_KIND_SERVER {
				root = s
				return true
			}
		}
		return false
	})
	if root.Parent != "" {
		t.Fatalf("the gateway's span has a parent %s: a client without a traceparent starts a new trace", root.Parent)
	}
	trace := func() map[string]span {
		out := map[string]span{}
		for _, s := range rc.snapshot() {
			if s.TraceID == root.TraceID {
				out[s.ID] = s
			}
		}
		return out
	}
	// Each process exports on its own schedule: wait until the consumer's span and every span
	// between it and the gateway's have arrived, then check them.
	var consumer span
	var spans map[string]span
	platform.Eventually(t, 30*time.Second, "the notification consumer's span and its ancestry in the purchase's trace", func() bool {
		spans = trace()
		for _, s := range spans {
			if s.Service == "sbor-notification" && s.Kind == tracepb.Span_SPAN_KIND_CONSUMER && strings.HasSuffix(s.Name, "ticket.purchased") {
				consumer = s
				for a, ok := s, true; ok; a, ok = spans[a.Parent] {
					if a.ID == root.ID {
						return true
					}
				}
			}
		}
		return false
	})
	services := map[string]bool{}
	for _, s := range spans {
		services[s.Service] = true
	}
	for _, want := range []string{"sbor-gateway", "sbor-ticket", "sbor-notification"} {
		if !services[want] {
			t.Errorf("no span of %s in the purchase's trace; services: %v", want, services)
		}
	}
	var ticketServer *span
	for _, s := range spans {
		if s.Service == "sbor-ticket" && s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.Name == route {
			ticketServer = &s
		}
	}
	if ticketServer == nil {
		t.Fatalf("no server span %q of the ticket service in the trace: %v", route, names(spans))
	}
	if ticketServer.Attributes["http.route"] != "/api/events/{id}/tickets" {
		t.Errorf("ticket server span's http.route = %q", ticketServer.Attributes["http.route"])
	}
	if !strings.HasPrefix(consumer.Name, "process ") || consumer.Attributes["messaging.system"] != "kafka" {
		t.Errorf("consumer span: %+v", consumer)
	}
	// consumer → ticket server span → gateway client span → gateway server span.
	chain := []string{}
	for s, ok := consumer, true; ok; s, ok = spans[s.Parent] {
		chain = append(chain, s.Service+": "+s.Name)
		if s.ID == root.ID {
			break
		}
		if s.Parent == "" {
			t.Fatalf("the consumer's span does not descend from the gateway's: %v", chain)
		}
	}
	if chain[len(chain)-1] != "sbor-gateway: "+route {
		t.Fatalf("the consumer's ancestry stops short of the gateway's span: %v", chain)
	}
	t.Logf("ancestry of the notification consumer's span: %v", chain)

	// The ticket service's log lines of the request carry its request id and trace id.
	found := false
	sc := bufio.NewScanner(strings.NewReader(p.Logs()["ticket"]))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["request_id"] != requestID {
			continue
		}
		if line["trace_id"] != root.TraceID || line["span_id"] == nil || line["span_id"] == "" {
			t.Errorf("ticket log line of request %s without the trace: %s", requestID, sc.Text())
		}
		found = true
	}
	if !found {
		t.Fatalf("no ticket service log line for request %s", requestID)
	}
}

func names(spans map[string]span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Service+": "+s.Name)
	}
	return out
}
