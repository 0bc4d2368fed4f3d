package gateway

import (
	"bytes"
	"iter"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// forwarder sends a public request on to one service and copies the answer back.
//
// It uses fasthttp's HostClient rather than net/http's Transport (through
// httputil.ReverseProxy): the HostClient writes the request and reads the answer in the
// handler's own goroutine, where the Transport hands each request to a connection's writer
// goroutine and the answer back from its reader goroutine. On the two cores the whole platform
// shares in `make bench`, those hand-offs were a third of what a proxied GET cost the gateway
// (see BenchmarkGateway and the README's Performance section).
//
// Bodies are bounded (the gateway's MaxBodyBytes on the way in; the services' answers are
// JSON documents and small PNGs), so both are held in memory instead of streamed. The public
// API has no 1xx answers, trailers or upgrades, and the forwarder does not pass them on.
// The client's request itself goes to the service and the service's answer is read into the
// client's response: nothing is copied.
type forwarder struct {
	upstream Upstream
	host     string
	client   *fasthttp.HostClient
	timeout  time.Duration
}

// Connection limits towards each service. A request that finds every connection busy waits
// for one (up to the upstream timeout) rather than failing.
const (
	defaultMaxConnsPerService = 1024
	upstreamDialTimeout       = 3 * time.Second
	// upstreamIdleTimeout is well under the services' own keep-alive timeout (web.IdleTimeout),
	// so the gateway closes an idle connection before a service does and never sends a request
	// on a connection the service is closing.
	upstreamIdleTimeout = 30 * time.Second
	// maxUpstreamAnswer bounds a service's answer held in memory.
	maxUpstreamAnswer = 16 << 20
)

func newForwarder(u Upstream, target *url.URL, cfg Config) *forwarder {
	maxConns := cfg.MaxConnsPerService
	if maxConns <= 0 {
		maxConns = defaultMaxConnsPerService
	}
	timeout := cfg.UpstreamTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &forwarder{
		upstream: u,
		host:     target.Host,
		timeout:  timeout,
		client: &fasthttp.HostClient{
			Addr:                target.Host,
			Name:                "sbor-gateway",
			MaxConns:            maxConns,
			MaxConnWaitTimeout:  timeout,
			MaxIdleConnDuration: upstreamIdleTimeout,
			// FIFO (fasthttp's default) on purpose: requests take turns on every pooled
			// connection, and so on every replica behind the service's ClusterIP, which
			// balances connections, not requests. LIFO (net/http's way) keeps a few warm
			// connections busy, and with them a few replicas; it bought nothing in the bench.
			ConnPoolStrategy:    fasthttp.FIFO,
			MaxResponseBodySize: maxUpstreamAnswer,
			// Send the path exactly as the gateway routed it: normalising it here (say,
			// decoding %2F and resolving "..") could make a service see another route than
			// the one the gateway authorised.
			DisablePathNormalizing:   true,
			NoDefaultUserAgentHeader: true,
			Dial:                     dialLive,
			RetryIfErr:               retryUpstream,
		},
	}
}

// headerRule says in which direction a header is never forwarded. Rules are keyed by
// lower-case name.
type headerRule uint8

const (
	// dropFromRequest: a client's copy never reaches a service.
	dropFromRequest headerRule = 1 << iota
	// dropFromAnswer: a service's copy never reaches a client.
	dropFromAnswer
	// dropTraceContext: a client's trace context, unless it is a trusted proxy's.
	dropTraceContext
)

var headerRules = func() map[string]headerRule {
	rules := map[string]headerRule{}
	add := func(rule headerRule, names ...string) {
		for _, n := range names {
			rules[strings.ToLower(n)] |= rule
		}
	}
	// Hop-by-hop headers are meaningful for one connection only (RFC 9110 section 7.6.1)
	// and are never forwarded, in either direction.
	add(dropFromRequest|dropFromAnswer, "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade")
	// The gateway alone sets these on the way to a service (and every identity header,
	// identity.HeaderPrefix).
	add(dropFromRequest, "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", identity.HeaderRequestID)
	// The gateway sets its own request id on the answer, and its server writes the Date.
	add(dropFromAnswer, identity.HeaderRequestID, "Date")
	add(dropTraceContext, tracing.TraceHeaders()...)
	return rules
}()

var identityPrefix = []byte(strings.ToLower(identity.HeaderPrefix))

// The names of the headers the gateway sets on every forwarded request, in fasthttp's
// canonical form once and for all (Set would normalise them on every request).
var (
	keyUserID         = canonicalKey(identity.HeaderUserID)
	keyUserRole       = canonicalKey(identity.HeaderUserRole)
	keyRequestID      = canonicalKey(identity.HeaderRequestID)
	keyForwardedFor   = canonicalKey("X-Forwarded-For")
	keyForwardedHost  = canonicalKey("X-Forwarded-Host")
	keyForwardedProto = canonicalKey("X-Forwarded-Proto")
)

func canonicalKey(name string) []byte { return fasthttp.AppendNormalizedHeaderKey(nil, name) }

// forward sends the call's request on to the service and reads the answer into the call's
// own response: the request is the client's, with the gateway's headers set, the path and
// query exactly as received.
func (f *forwarder) forward(g *Gateway, c *call) {
	req := &c.fc.Request
	h := &req.Header
	// The access token stops here: a service learns who the caller is from the identity
	// headers below, and never holds a token it could leak or replay.
	h.Del("Authorization")
	if id := c.caller; id.Role != "" {
		text, _ := id.UserID.MarshalText() // never fails
		h.SetCanonical(keyUserID, text)
		h.SetCanonical(keyUserRole, []byte(id.Role))
	}
	h.SetCanonical(keyRequestID, []byte(c.id))
	h.SetCanonical(keyForwardedFor, []byte(c.clientIP))
	h.SetCanonical(keyForwardedHost, h.Host()) // the Host the client asked for, until SetHost
	proto := []byte("http")
	if c.fc.IsTLS() {
		proto = []byte("https")
	}
	h.SetCanonical(keyForwardedProto, proto)
	h.SetHost(f.host)

	ctx, span := tracing.StartClientSpan(c.ctx, c.route.Method, f.host, c.route.Pattern)
	if tracing.Carries(ctx) {
		tracing.Propagator().Inject(ctx, requestHeaderCarrier{h})
	}
	resp := &c.fc.Response
	err := f.client.DoTimeout(req, resp, f.timeout)
	if span != nil {
		tracing.EndClientSpan(span, resp.StatusCode(), err)
	}
	if err != nil {
		resp.Reset()
		g.log.WarnContext(c.ctx, "upstream failed", "upstream", string(f.upstream), "err", err)
		e := errs.New(errs.Unavailable, "upstream_unavailable", "the "+string(f.upstream)+" service did not answer; retry shortly")
		e.RetryAfter = 1
		g.problem(c, e)
		return
	}
	cleanAnswer(&resp.Header)
}

// cleanAnswer removes from a service's answer what is not the client's: hop-by-hop headers
// (and a "Connection: close" meant for the gateway's connection), the service's request id
// and its Date.
func cleanAnswer(h *fasthttp.ResponseHeader) {
	sweepHeaders(h, h.Peek("Connection"), h.All(), dropFromAnswer)
	h.ResetConnectionClose()
}

// sweepHeaders deletes from a request's or an answer's headers (h, with its Connection
// header's value and its All iterator) those the rule drops, those the Connection header
// names (hop-by-hop too) and, on a request, every identity header. The caller passes All's
// iterator itself: made at the call, from the concrete header type, it stays on the stack.
func sweepHeaders(h interface{ DelBytes(key []byte) }, connection []byte, all iter.Seq2[[]byte, []byte], rule headerRule) {
	s := headerSweeps.Get().(*headerSweep)
	s.rule, s.connection = rule, connection
	all(s.visit)
	s.connection = nil // Peek's answer is not valid once h changes
	start := 0
	for _, end := range s.ends {
		h.DelBytes(s.drop[start:end])
		start = end
	}
	s.reset()
	headerSweeps.Put(s)
}

// headerSweep is the working space of one pass over a request's or an answer's headers. The
// header rules run on every request and every answer, so they allocate nothing: names are
// lower-cased, and the ones to delete kept, in a sweep's buffers, reused from pass to pass;
// the iterator's yield is bound once (a range loop over All would allocate its closure and
// its state on every pass).
type headerSweep struct {
	rule       headerRule
	connection []byte // the Connection header's value
	lower      []byte // the name being checked, lower-cased
	drop       []byte // the names to delete, back to back
	ends       []int  // where each name in drop ends
	visit      func(k, v []byte) bool
}

var headerSweeps = sync.Pool{New: func() any {
	s := new(headerSweep)
	s.visit = s.check // bound once: a method value made per call would be allocated
	return s
}}

// check (as visit, an All iterator's yield) notes the header named k for deletion if the
// sweep's rules drop it, a Connection header names it, or, on a request, it is an identity
// header.
func (s *headerSweep) check(k, _ []byte) bool {
	s.lower = append(s.lower[:0], k...)
	for i, c := range s.lower {
		if 'A' <= c && c <= 'Z' {
			s.lower[i] = c + 'a' - 'A'
		}
	}
	if headerRules[string(s.lower)]&s.rule != 0 ||
		s.rule&dropFromRequest != 0 && bytes.HasPrefix(s.lower, identityPrefix) ||
		len(s.connection) > 0 && namedIn(s.connection, s.lower) {
		s.drop = append(s.drop, k...)
		s.ends = append(s.ends, len(s.drop))
	}
	return true
}

// reset empties the sweep for the next pass; oversized buffers are not kept.
func (s *headerSweep) reset() {
	const keep = 4 << 10
	if cap(s.lower) > keep || cap(s.drop) > keep || cap(s.ends) > keep {
		*s = headerSweep{visit: s.visit}
		return
	}
	s.lower, s.drop, s.ends = s.lower[:0], s.drop[:0], s.ends[:0]
}

// namedIn reports whether a Connection header's value (comma-separated tokens) names the
// header whose lower-case name is given: such a header is hop-by-hop too.
func namedIn(connection, lowerName []byte) bool {
	for token := range bytes.SplitSeq(connection, []byte(",")) {
		if bytes.EqualFold(bytes.TrimSpace(token), lowerName) {
			return true
		}
	}
	return false
}

// requestHeaderCarrier lets the trace propagator write traceparent, tracestate and baggage
// onto a fasthttp request.
type requestHeaderCarrier struct{ h *fasthttp.RequestHeader }

func (c requestHeaderCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c requestHeaderCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c requestHeaderCarrier) Keys() []string {
	var keys []string
	for k := range c.h.All() {
		keys = append(keys, string(k))
	}
	return keys
}
