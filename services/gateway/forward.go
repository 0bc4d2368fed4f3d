package gateway

import (
	"bytes"
	"iter"
	"net/url"
	"strings"
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

// hopHeaders are meaningful for one connection only (RFC 9110 section 7.6.1) and are never
// forwarded, in either direction. Header sets here are keyed by lower-case name.
var hopHeaders = lowerSet("Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade")

// gatewayHeaders are set by the gateway alone on the way to a service; a client's copies
// are dropped, and so is every identity header (identity.HeaderPrefix).
var gatewayHeaders = lowerSet("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", identity.HeaderRequestID)

// serviceOnlyHeaders are dropped from a service's answer: the gateway sets its own request
// id, and its server writes the Date.
var serviceOnlyHeaders = lowerSet(identity.HeaderRequestID, "Date")

var identityPrefix = []byte(strings.ToLower(identity.HeaderPrefix))

func lowerSet(names ...string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[strings.ToLower(n)] = true
	}
	return set
}

// forward sends the call's request on to the service and reads the answer into the call's
// own response: the request is the client's, with the gateway's headers set, the path and
// query exactly as received.
func (f *forwarder) forward(g *Gateway, c *call) {
	req := &c.fc.Request
	h := &req.Header
	// The access token stops here: a service learns who the caller is from the identity
	// headers below, and never holds a token it could leak or replay.
	h.Del("Authorization")
	if id, ok := identity.From(c.ctx); ok {
		h.Set(identity.HeaderUserID, id.UserID.String())
		h.Set(identity.HeaderUserRole, string(id.Role))
	}
	h.Set(identity.HeaderRequestID, c.id)
	h.Set("X-Forwarded-For", c.clientIP)
	h.Set("X-Forwarded-Host", c.host)
	proto := "http"
	if c.fc.IsTLS() {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
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
	dropHeaders(h, serviceOnlyHeaders, false)
	h.ResetConnectionClose()
}

// headerSet is what fasthttp's request and response headers share.
type headerSet interface {
	Peek(key string) []byte
	All() iter.Seq2[[]byte, []byte]
	Del(key string)
}

// dropHeaders deletes the hop-by-hop headers (those a Connection header names too), those in
// unwanted and, with identities, every identity header. It runs on every request and answer,
// so names are compared lower-cased in a stack buffer rather than canonicalised into new
// strings.
func dropHeaders(h headerSet, unwanted map[string]bool, identities bool) {
	connection := string(h.Peek("Connection"))
	var buf [64]byte
	var drop []string
	for k := range h.All() {
		var name []byte
		if len(k) <= len(buf) {
			name = buf[:len(k)]
			for i, c := range k {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				name[i] = c
			}
		} else {
			name = bytes.ToLower(k)
		}
		if hopHeaders[string(name)] || unwanted[string(name)] ||
			identities && bytes.HasPrefix(name, identityPrefix) ||
			connection != "" && namedIn(connection, string(name)) {
			drop = append(drop, string(k))
		}
	}
	for _, name := range drop {
		h.Del(name)
	}
}

// namedIn reports whether a Connection header's value (comma-separated tokens) names the
// header: such a header is hop-by-hop too.
func namedIn(connection, name string) bool {
	for token := range strings.SplitSeq(connection, ",") {
		if strings.EqualFold(strings.TrimSpace(token), name) {
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
