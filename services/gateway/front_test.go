package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCORSHeadersOnForwardedAnswersAndPreflights(t *testing.T) {
	t.Parallel()
	upstream, got := recording(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
	gw, _ := forwardingGateway(t, upstream, func(c *Config) { c.CORSOrigins = []string{"https://app.example", "https://*.sbor.example"} })
	for origin, allowed := range map[string]bool{"https://app.example": true, "https://eu.sbor.example": true, "https://evil.example": false, "": false} {
		req, _ := http.NewRequest("GET", gw+"/api/events", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, _ := exchange(t, req)
		received(t, got)
		acao := resp.Header.Get("Access-Control-Allow-Origin")
		if allowed && (acao != origin || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id")) {
			t.Errorf("origin %q: Allow-Origin %q, Expose-Headers %q", origin, acao, resp.Header.Get("Access-Control-Expose-Headers"))
		}
		if !allowed && acao != "" {
			t.Errorf("origin %q not allowed but Access-Control-Allow-Origin = %q", origin, acao)
		}
		if resp.Header.Get("Vary") != "Origin" {
			t.Errorf("origin %q: Vary %q", origin, resp.Header.Get("Vary"))
		}
	}
	req, _ := http.NewRequest("OPTIONS", gw+"/api/events", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, _ := exchange(t, req)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

// Requests the server refuses before any route (body or headers over their limits, bytes
// that are not HTTP) are problem+json answers the client gets to read.
func TestRequestsRefusedBeforeRoutingAreProblems(t *testing.T) {
	t.Parallel()
	upstream, _ := recording(t, func(w http.ResponseWriter, r *http.Request) {})
	gw, _ := forwardingGateway(t, upstream, func(c *Config) { c.MaxBodyBytes = 1 << 10 })

	problem := func(name string, resp *http.Response, status int, code string) {
		t.Helper()
		defer resp.Body.Close()
		var p struct {
			Code      string `json:"code"`
			Status    int    `json:"status"`
			RequestID string `json:"request_id"`
		}
		err := json.NewDecoder(resp.Body).Decode(&p)
		if resp.StatusCode != status || err != nil || p.Code != code || p.Status != status || p.RequestID == "" ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %q %+v (%v), want %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), p, err, status, code)
		}
	}
	big := strings.Repeat("x", 3<<20) // the client is still sending when the gateway answers
	resp, err := http.Post(gw+"/api/events", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatalf("a body over the limit: %v (the answer was lost)", err)
	}
	problem("body over the limit", resp, http.StatusRequestEntityTooLarge, "body_too_large")

	req, _ := http.NewRequest("GET", gw+"/api/events", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 40<<10))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	problem("headers over the limit", resp, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large")

	conn, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err = http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	problem("a malformed request", resp, http.StatusBadRequest, "bad_request")
}

// A client may not join or force-sample the platform's traces; a trusted proxy (an ingress
// that traces) continues its trace into the services.
func TestTraceContextIsTakenOnlyFromTrustedPeers(t *testing.T) {
	t.Parallel()
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, trusted := range []bool{false, true} {
		upstream, got := recording(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
		gw, _ := forwardingGateway(t, upstream, func(c *Config) {
			if trusted {
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
		})
		req, _ := http.NewRequest("GET", gw+"/api/events", nil)
		req.Header.Set("Traceparent", parent)
		req.Header.Set("Baggage", "tenant=x")
		req.Header.Set("Tracestate", "vendor=x")
		exchange(t, req)
		s := received(t, got)
		tp := s.header.Get("Traceparent")
		if trusted && !strings.Contains(tp, "4bf92f3577b34da6a3ce929d0e0e4736") {
			t.Errorf("from a trusted proxy the service got traceparent %q, want the proxy's trace", tp)
		}
		if !trusted && (tp != "" || s.header.Get("Baggage") != "" || s.header.Get("Tracestate") != "") {
			t.Errorf("from an untrusted client the service got traceparent %q baggage %q tracestate %q", tp, s.header.Get("Baggage"), s.header.Get("Tracestate"))
		}
	}
}

// A connection refused for its body is closed gently: the gateway keeps reading (and
// dropping) what the client still sends for a while, so a client that sends its body before
// reading the answer is not cut off by a reset.
func TestRefusedConnectionTakesTheRestOfTheBody(t *testing.T) {
	t.Parallel()
	upstream, _ := recording(t, func(w http.ResponseWriter, r *http.Request) {})
	gw, _ := forwardingGateway(t, upstream, func(c *Config) { c.MaxBodyBytes = 1 << 10 })
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 6 << 20 // more than the kernel buffers on both sides hold
	_, _ = fmt.Fprintf(conn, "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer %d, want 413", resp.StatusCode)
	}
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := conn.Write(chunk); err != nil {
			t.Fatalf("after %d KiB of the body: %v (the gateway dropped the connection)", sent>>10, err)
		}
	}
}
