package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
	"github.com/sbor-dev/sbor/internal/platform/web"
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
type forwarder struct {
	upstream Upstream
	host     string
	client   *fasthttp.HostClient
	timeout  time.Duration
	trusted  []netip.Prefix
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
		trusted:  cfg.TrustedProxies,
		client: &fasthttp.HostClient{
			Addr:                target.Host,
			Name:                "sbor-gateway",
			MaxConns:            maxConns,
			MaxConnWaitTimeout:  timeout,
			MaxIdleConnDuration: upstreamIdleTimeout,
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
// forwarded, in either direction.
var hopHeaders = canonicalSet("Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade")

// gatewayHeaders are set by the gateway alone on the way to a service; a client's copies
// are dropped (identity headers too: see isGatewayHeader).
var gatewayHeaders = canonicalSet("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", identity.HeaderRequestID)

// requestIDHeader is the request id's header name as net/http's and fasthttp's header maps
// spell it ("X-Request-Id").
var requestIDHeader = http.CanonicalHeaderKey(identity.HeaderRequestID)

// canonicalSet keys a set by canonical header names, the form both header maps use.
func canonicalSet(names ...string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[http.CanonicalHeaderKey(n)] = true
	}
	return set
}

func isGatewayHeader(canonical string) bool {
	return gatewayHeaders[canonical] || strings.HasPrefix(canonical, identity.HeaderPrefix)
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	if !f.buildRequest(w, r, req) {
		return
	}
	ctx, span := tracing.StartClientSpan(r.Context(), r.Method, f.host, r.URL.Path)
	if tracing.Carries(ctx) {
		tracing.Propagator().Inject(ctx, requestHeaderCarrier{&req.Header})
	}
	err := f.client.DoTimeout(req, resp, f.timeout)
	if span != nil {
		tracing.EndClientSpan(span, resp.StatusCode(), err)
	}
	if err != nil {
		f.failed(w, r, err)
		return
	}
	f.copyAnswer(w, resp)
}

// buildRequest fills req from the client's request r: method, path and query as received,
// end-to-end headers, the caller's identity and the forwarding headers. It reports false when
// it already answered (the client's body could not be read).
func (f *forwarder) buildRequest(w http.ResponseWriter, r *http.Request, req *fasthttp.Request) bool {
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.URL.RequestURI())
	req.Header.SetHost(f.host)
	connectionTokens := r.Header["Connection"]
	for name, values := range r.Header {
		if hopHeaders[name] || isGatewayHeader(name) || namedIn(connectionTokens, name) {
			continue
		}
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	if id, ok := identity.From(r.Context()); ok {
		req.Header.Set(identity.HeaderUserID, id.UserID.String())
		req.Header.Set(identity.HeaderUserRole, string(id.Role))
	}
	req.Header.Set(identity.HeaderRequestID, web.RequestIDFrom(r.Context()))
	req.Header.Set("X-Forwarded-For", ClientIP(r, f.trusted))
	req.Header.Set("X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	req.Header.Set("X-Forwarded-Proto", proto)

	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	// limitBody caps the body at MaxBodyBytes, so reading it whole is bounded.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			web.Error(w, r, err)
		case clientFailed(w, r):
		default:
			web.Error(w, r, errs.New(errs.Invalid, "unreadable_body", "the request body could not be read"))
		}
		return false
	}
	if len(body) > 0 || r.ContentLength == 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
		req.SetBody(body)
	}
	return true
}

// copyAnswer writes the service's answer to the client, without hop-by-hop headers and
// without the service's request id (the gateway's own is already on the answer).
func (f *forwarder) copyAnswer(w http.ResponseWriter, resp *fasthttp.Response) {
	h := w.Header()
	var connectionTokens []string
	if c := resp.Header.Peek("Connection"); len(c) > 0 {
		connectionTokens = []string{string(c)}
	}
	for k, v := range resp.Header.All() {
		name := http.CanonicalHeaderKey(string(k))
		if hopHeaders[name] || name == "Content-Length" || name == requestIDHeader || namedIn(connectionTokens, name) {
			continue
		}
		h.Add(name, string(v))
	}
	status := resp.StatusCode()
	body := resp.Body()
	if bodyAllowed(status) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if bodyAllowed(status) && len(body) > 0 {
		_, _ = w.Write(body)
	}
}

// failed answers a request the service did not answer: the client's own failure when it was
// one, otherwise 503 upstream_unavailable.
func (f *forwarder) failed(w http.ResponseWriter, r *http.Request, err error) {
	if clientFailed(w, r) {
		return
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away
	}
	web.LoggerFrom(r.Context()).WarnContext(r.Context(), "upstream failed", "upstream", string(f.upstream), "err", err)
	e := errs.New(errs.Unavailable, "upstream_unavailable", "the "+string(f.upstream)+" service did not answer; retry shortly")
	e.RetryAfter = 1
	web.Error(w, r, e)
}

// namedIn reports whether a Connection header (its values, comma-separated tokens) names the
// header: such a header is hop-by-hop too.
func namedIn(connection []string, name string) bool {
	for _, v := range connection {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), name) {
				return true
			}
		}
	}
	return false
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
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
