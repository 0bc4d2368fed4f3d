// Package gateway is Sbor's single public entry point. It verifies access tokens (the only
// place that does), strips every identity header a client sent and sets its own, assigns
// request ids, and forwards the routes of the public API to the services over reused
// connections. Internal routes are never forwarded.
//
// The gateway is a fasthttp server. The routes it forwards (Routes) take a lean path of their
// own (front.go: match, authenticate, forward, observe), because on a small machine every
// microsecond the gateway spends is one the services do not get: net/http's server and
// client cost about as much CPU per proxied GET as the service's own answer (see the README's
// Performance section). Everything else — the API document, the scanner page, health, 404 and
// 405 answers, CORS preflights — is an ordinary chi router of net/http handlers, reached
// through fasthttp's adaptor. On Linux the sockets on both sides are read and written with raw
// system calls under Go's poller (rawio_linux.go), which spares the runtime handing a P to
// another thread whenever a loopback write is slow.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/cors"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// Config configures the gateway.
type Config struct {
	// Upstreams maps each service to its base URL; a missing one answers 503.
	Upstreams map[Upstream]string
	// CORSOrigins lists the browser origins allowed to call the API ("*" for any).
	CORSOrigins []string
	// TrustedProxies are the peers (an ingress controller, a load balancer) whose
	// X-Forwarded-For is believed when computing the client address.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes caps request bodies before they reach a service (1 MiB when zero).
	MaxBodyBytes int64
	// UpstreamTimeout bounds how long a service may take to answer (30 s when zero).
	UpstreamTimeout time.Duration
	// MaxConnsPerService caps the connections to each service (kept open for reuse while
	// busy); a request that finds them all busy waits for one.
	MaxConnsPerService int
	// TokenCacheSize is how many verified access tokens are remembered until they expire
	// (see tokenCache): 0 means DefaultTokenCacheSize, negative turns the cache off.
	TokenCacheSize int
}

// Router is what extra routes (health, documents) are mounted on.
type Router = chi.Router

// Gateway is the public entry point's HTTP server.
type Gateway struct {
	log      *slog.Logger
	cfg      Config
	verifier TokenVerifier
	// routes holds Routes alone, to find the route of a request with chi's own matching:
	// the fast path and the fallback router can then never disagree on what a path is.
	routes   *chi.Mux
	byRoute  map[string]map[string]*route // by method, then pattern
	fallback fasthttp.RequestHandler
	cors     *corsPolicy
	inFlight prometheus.Gauge
}

// route is one of Routes, with the forwarder of its service (nil when it is not deployed).
type route struct {
	Route
	forward *forwarder
	name    string // "METHOD pattern", the span name
	metrics *web.RouteMetrics
}

// New builds the gateway; extra mounts more routes (health, documents) on its router.
func New(log *slog.Logger, cfg Config, verifier TokenVerifier, extra func(Router)) (*Gateway, error) {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if v, ok := verifier.(*token.Verifier); ok && cfg.TokenCacheSize >= 0 {
		size := cfg.TokenCacheSize
		if size == 0 {
			size = DefaultTokenCacheSize
		}
		verifier = newTokenCache(v, size)
	}
	forwarders := map[Upstream]*forwarder{}
	for u, raw := range cfg.Upstreams {
		if raw == "" {
			continue
		}
		target, err := url.Parse(raw)
		if err != nil || target.Host == "" {
			return nil, errors.New("gateway: bad URL for the " + string(u) + " service")
		}
		forwarders[u] = newForwarder(u, target, cfg)
	}
	g := &Gateway{log: log, cfg: cfg, verifier: verifier, routes: chi.NewMux(), byRoute: map[string]map[string]*route{},
		cors: newCORSPolicy(cfg.CORSOrigins), inFlight: web.InFlight("gateway")}
	for _, rt := range Routes {
		g.routes.Method(rt.Method, rt.Pattern, http.NotFoundHandler()) // only matched, never served
		if g.byRoute[rt.Method] == nil {
			g.byRoute[rt.Method] = map[string]*route{}
		}
		g.byRoute[rt.Method][rt.Pattern] = &route{Route: rt, forward: forwarders[rt.Upstream], name: rt.Method + " " + rt.Pattern,
			metrics: web.NewRouteMetrics("gateway", rt.Method, rt.Pattern)}
	}
	g.fallback = fasthttpadaptor.NewFastHTTPHandler(g.fallbackRouter(extra))
	return g, nil
}

// fallbackRouter serves what is not a forwarded route, with the services' usual middleware.
func (g *Gateway) fallbackRouter(extra func(Router)) http.Handler {
	r := chi.NewRouter()
	untrusted := web.UntrustedPeer(func(r *http.Request) bool { return !isTrusted(peerAddr(r.RemoteAddr), g.cfg.TrustedProxies) })
	r.Use(stripClientHeaders, web.RequestContext(g.log), web.Trace(untrusted), web.Instrument("gateway"), web.Recover, web.AccessLog)
	if len(g.cfg.CORSOrigins) > 0 {
		r.Use(cors.New(cors.Options{
			AllowedOrigins: g.cfg.CORSOrigins,
			AllowedMethods: corsMethods,
			AllowedHeaders: corsAllowedHeaders,
			ExposedHeaders: corsExposedHeaders,
			MaxAge:         corsMaxAge,
		}).Handler)
	}
	r.NotFound(web.NotFoundHandler)
	r.MethodNotAllowed(web.MethodNotAllowedHandler)
	// The forwarded routes are registered here too, so that another method on their paths
	// is a 405 with Allow; the front end serves them before this router sees them.
	for _, rt := range Routes {
		r.Method(rt.Method, rt.Pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			web.Error(w, r, errs.New(errs.Internal, "internal", "route "+rt.Method+" "+rt.Pattern+" reached the fallback router"))
		}))
	}
	if extra != nil {
		extra(r)
	}
	return r
}

// stripClientHeaders deletes every header only the gateway may set, before anything reads
// them: identity headers and the request id.
func stripClientHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		identity.StripHeaders(r.Header)
		r.Header.Del(identity.HeaderRequestID)
		next.ServeHTTP(w, r)
	})
}

var routeContexts = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// ServeFastHTTP answers one request: a forwarded route on the front end's path, anything
// else through the fallback router.
func (g *Gateway) ServeFastHTTP(fc *fasthttp.RequestCtx) {
	rctx := routeContexts.Get().(*chi.Context)
	rctx.Reset()
	method := string(fc.Method())
	pattern := g.routes.Find(rctx, method, string(fc.URI().PathOriginal()))
	routeContexts.Put(rctx)
	if pattern == "" {
		g.fallback(fc)
		return
	}
	g.serveRoute(fc, g.byRoute[method][pattern])
}

// Serve serves the gateway on ln until ctx is cancelled, then lets in-flight requests finish
// (for at most web.ShutdownTimeout).
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := g.server()
	serve := func(ln net.Listener) error { return srv.Serve(clientListener{ln}) }
	return web.ServeUntil(ctx, g.log, "gateway", ln, serve, srv.ShutdownWithContext)
}

// maxHeaderBytes bounds a request's line and headers (431 beyond), as for the services.
const maxHeaderBytes = 32 << 10

// server is the fasthttp server, with the services' timeouts (web.ReadHeaderTimeout for
// the request line and headers, web.ReadTimeout for the body).
func (g *Gateway) server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:      g.ServeFastHTTP,
		ErrorHandler: g.requestFailed,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if h.ContentLength() == 0 {
				return fasthttp.RequestConfig{} // no body to read: the next deadline is the idle one
			}
			return fasthttp.RequestConfig{ReadTimeout: web.ReadTimeout}
		},
		ReadTimeout:                  web.ReadHeaderTimeout,
		WriteTimeout:                 web.WriteTimeout,
		IdleTimeout:                  web.IdleTimeout,
		ReadBufferSize:               maxHeaderBytes,
		MaxRequestBodySize:           int(g.cfg.MaxBodyBytes),
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		// A refused request's bytes (its Authorization header among them) stay out of
		// fasthttp's error messages, which are logged.
		SecureErrorLogMessage: true,
		Logger:                fastLogger{g.log},
	}
}

// fastLogger sends fasthttp's own messages (connection errors) to the debug log.
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "message", strings.TrimSpace(fmt.Sprintf(format, args...)))
}

// ClientIP returns the caller's address: the peer, or, when the peer is a trusted proxy, the
// rightmost address in X-Forwarded-For (all its values, in order) that is not a trusted proxy.
func ClientIP(peer netip.Addr, forwardedFor []string, trusted []netip.Prefix) string {
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(forwardedFor, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return peer.String()
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
