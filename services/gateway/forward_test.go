package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/token"
)

// acceptAll verifies every token as the same user.
type acceptAll struct{ id uuid.UUID }

func (a acceptAll) Verify(context.Context, string) (token.Verified, error) {
	return token.Verified{UserID: a.id, Role: string(identity.RoleOrganizer)}, nil
}

// seen is what the upstream received.
type seen struct {
	method, requestURI, host string
	header                   http.Header
	body                     []byte
}

// forwardingGateway is a gateway whose event and ticket services are upstream.
func forwardingGateway(t *testing.T, upstream http.Handler, mutate func(*Config)) (string, uuid.UUID) {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	cfg := Config{Upstreams: map[Upstream]string{UpstreamEvent: up.URL, UpstreamTicket: up.URL}, MaxBodyBytes: 1 << 20}
	if mutate != nil {
		mutate(&cfg)
	}
	id := uuid.New()
	g, err := New(slog.New(slog.DiscardHandler), cfg, acceptAll{id}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ServeForTest(t, g), id
}

func recording(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (http.Handler, chan seen) {
	got := make(chan seen, 64)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream: reading the body: %v", err)
		}
		got <- seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), body}
		answer(w, r)
	}), got
}

// received returns what the upstream received next.
func received(t *testing.T, got chan seen) seen {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the service")
		return seen{}
	}
}

// exchange sends req to the gateway and returns the answer, its body read.
func exchange(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestForwarderPassesEndToEndPartsAndDropsHopByHopOnes(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB answer
	upstream, got := recording(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Request-ID", "service-request-id")
		h.Set("Connection", "X-Secret-Hop")
		h.Set("X-Secret-Hop", "for the gateway only")
		h.Set("Keep-Alive", "timeout=5")
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		h.Set("Location", "/api/events/1")
		if r.URL.Query().Get("big") != "" {
			_, _ = w.Write(big)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	gw, id := forwardingGateway(t, upstream, nil)

	body := `{"title":"Ünïcode & more"}`
	req, _ := http.NewRequest("POST", gw+"/api/events?x=a%2Fb&y=%C3%BC", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer any")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k-1")
	req.Header.Add("Accept-Language", "en")
	req.Header.Add("Accept-Language", "cs")
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "for the gateway only")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Forwarded", "for=1.2.3.4")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-User-Id", uuid.NewString())
	longIdentity := "X-User-" + strings.Repeat("Long", 30) // a long name
	req.Header.Set(longIdentity, "admin")
	req.Header.Set("x-uSER-role", "organizer")
	resp, answer := exchange(t, req)

	s := received(t, got)
	if s.method != "POST" || s.requestURI != "/api/events?x=a%2Fb&y=%C3%BC" || string(s.body) != body {
		t.Errorf("upstream saw %s %s %q", s.method, s.requestURI, s.body)
	}
	if s.host != strings.TrimPrefix(gw, "http://") && !strings.HasPrefix(s.host, "127.0.0.1:") {
		t.Errorf("upstream Host %q", s.host)
	}
	for name, want := range map[string]string{
		"Content-Type": "application/json", "Idempotency-Key": "k-1", "Accept-Language": "en",
		identity.HeaderUserID: id.String(), identity.HeaderUserRole: "organizer",
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": strings.TrimPrefix(gw, "http://"),
	} {
		if got := s.header.Get(name); got != want {
			t.Errorf("upstream header %s = %q, want %q", name, got, want)
		}
	}
	if v := s.header.Values("Accept-Language"); len(v) != 2 {
		t.Errorf("repeated header arrived as %q", v)
	}
	for _, name := range []string{"X-Client-Hop", "Proxy-Authorization", "Forwarded", "Authorization", http.CanonicalHeaderKey(longIdentity)} {
		if v, ok := s.header[name]; ok {
			t.Errorf("hop-by-hop or client-forged header %s reached the service: %q", name, v)
		}
	}
	if rid := s.header.Get(identity.HeaderRequestID); rid == "" || rid != resp.Header.Get(identity.HeaderRequestID) {
		t.Errorf("request id: service saw %q, client got %q", rid, resp.Header.Get(identity.HeaderRequestID))
	}

	if resp.StatusCode != 201 || string(answer) != `{"ok":true}` || resp.Header.Get("Location") != "/api/events/1" {
		t.Errorf("client got %d %q Location=%q", resp.StatusCode, answer, resp.Header.Get("Location"))
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 2 {
		t.Errorf("Set-Cookie values %q", c)
	}
	if v := resp.Header.Values(identity.HeaderRequestID); len(v) != 1 || v[0] == "service-request-id" {
		t.Errorf("client sees request ids %q, want the gateway's alone", v)
	}
	for _, name := range []string{"X-Secret-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("hop-by-hop answer header %s reached the client: %q", name, v)
		}
	}

	// A large answer arrives whole, with its length.
	req, _ = http.NewRequest("GET", gw+"/api/events?big=1", nil)
	resp, answer = exchange(t, req)
	received(t, got)
	if !bytes.Equal(answer, big) || resp.ContentLength != int64(len(big)) {
		t.Errorf("large answer: %d bytes, Content-Length %d, want %d", len(answer), resp.ContentLength, len(big))
	}
}

// The path goes to the service exactly as the gateway routed it: an encoded slash or dot
// segment must not turn /api/events/{id} into another route behind the gateway.
func TestForwarderSendsThePathAsRouted(t *testing.T) {
	t.Parallel()
	upstream, got := recording(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	gw, _ := forwardingGateway(t, upstream, nil)
	for _, path := range []string{"/api/events/..%2F..%2Finternal%2Fjwks", "/api/events/%2e%2e", "/api/events/a%20b"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_, _ = io.ReadAll(conn)
		conn.Close()
		if s := received(t, got); s.requestURI != path {
			t.Errorf("GET %s reached the service as %s", path, s.requestURI)
		}
	}
}

func TestForwarderAnswersWithoutBodies(t *testing.T) {
	t.Parallel()
	upstream, got := recording(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	gw, _ := forwardingGateway(t, upstream, nil)
	req, _ := http.NewRequest("POST", gw+"/api/events/1/publish", nil)
	req.Header.Set("Authorization", "Bearer any")
	resp, b := exchange(t, req)
	s := received(t, got)
	if resp.StatusCode != 204 || len(b) != 0 || len(s.body) != 0 || s.header.Get("Content-Length") != "0" {
		t.Errorf("204: status %d body %q; upstream body %q Content-Length %q", resp.StatusCode, b, s.body, s.header.Get("Content-Length"))
	}
}

// A service that is slow, or drops the connection mid-answer, is the gateway's 503, never a
// half answer.
func TestForwarderReportsUpstreamFailures(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/events/slow":
			<-release
		case "/api/events/drop":
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "partial")
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		}
	})
	gw, _ := forwardingGateway(t, upstream, func(c *Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	t.Cleanup(func() { close(release) }) // before the upstream's Close, which waits for its handlers
	for _, path := range []string{"/api/events/slow", "/api/events/drop"} {
		req, _ := http.NewRequest("GET", gw+path, nil)
		resp, b := exchange(t, req)
		if resp.StatusCode != 503 || !strings.Contains(string(b), "upstream_unavailable") || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// A service that closed the gateway's kept-alive connections (it restarted, or shut down
// gracefully) costs nobody an error: a POST too goes out once, on a new connection.
func TestForwarderSendsAgainOnlyWhatWasNeverSent(t *testing.T) {
	t.Parallel()
	upstream, got := recording(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	g, err := New(slog.New(slog.DiscardHandler), Config{Upstreams: map[Upstream]string{UpstreamEvent: up.URL}}, acceptAll{uuid.New()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := ServeForTest(t, g)
	post := func() int {
		req, _ := http.NewRequest("POST", gw+"/api/events", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer any")
		resp, _ := exchange(t, req)
		return resp.StatusCode
	}
	get := func() int {
		req, _ := http.NewRequest("GET", gw+"/api/events", nil)
		resp, _ := exchange(t, req)
		return resp.StatusCode
	}
	// A POST goes out only on a connection known open (liveConn's peek); a GET is sent
	// without the peek and, if the connection was closed, again on a new one.
	for round := range 6 {
		send, method := post, "POST"
		if round%2 == 1 {
			send, method = get, "GET"
		}
		if status := send(); status != 200 {
			t.Fatalf("round %d: %s answered %d", round, method, status)
		}
		received(t, got)
		up.CloseClientConnections() // every pooled connection of the gateway is now closed
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case s := <-got:
		t.Errorf("the service received a request twice: %s %s", s.method, s.requestURI)
	case <-time.After(100 * time.Millisecond):
	}
}

// More concurrent requests than connections allowed wait for a connection instead of failing.
func TestForwarderQueuesBeyondItsConnectionLimit(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	inFlight, most := 0, 0
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		_, _ = io.WriteString(w, "{}")
	})
	gw, _ := forwardingGateway(t, upstream, func(c *Config) { c.MaxConnsPerService = 2 })
	var wg sync.WaitGroup
	failures := make(chan string, 32)
	for range 32 {
		wg.Go(func() {
			resp, err := http.Get(gw + "/api/events")
			if err != nil {
				failures <- err.Error()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failures <- resp.Status
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("request failed: %s", f)
	}
	if most > 2 {
		t.Errorf("%d requests at the service at once, want at most 2", most)
	}
}

func TestNamedIn(t *testing.T) {
	conn := "keep-alive, X-Foo,  x-bar "
	for name, want := range map[string]bool{"X-Foo": true, "X-Bar": true, "Keep-Alive": true, "X-Baz": false} {
		if got := namedIn([]byte(conn), []byte(strings.ToLower(name))); got != want {
			t.Errorf("namedIn(%q) = %v", name, got)
		}
	}
}

// The sweeps are pooled: one that dropped a name too long to keep its buffers for, and the
// ones after it, must still drop everything they should.
func TestHeaderSweepsAfterALongName(t *testing.T) {
	long := identity.HeaderPrefix + strings.Repeat("x", 5<<10)
	for i := range 3 {
		var h fasthttp.RequestHeader
		h.Set("Accept", "application/json")
		h.Set(identity.HeaderUserID, uuid.NewString())
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		if i == 0 {
			h.Set(long, "admin")
		}
		stripClientRequest(&h, false)
		for k := range h.All() {
			switch strings.ToLower(string(k)) {
			case "accept", "host":
			default:
				t.Errorf("pass %d: %.40s was kept", i, k)
			}
		}
		if string(h.Peek("Accept")) != "application/json" {
			t.Errorf("pass %d: Accept lost", i)
		}
	}
}
