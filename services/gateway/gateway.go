// Package gateway is Sbor's single public entry point. It verifies access tokens (the only
// place that does), strips every identity header a client sent and sets its own, assigns
// request ids, and forwards the routes of the public API to the services over reused
// connections. Internal routes are never forwarded.
package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/cors"

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
	// MaxBodyBytes caps request bodies before they reach a service.
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

// Handler returns the gateway's HTTP handler.
func Handler(log *slog.Logger, cfg Config, verifier TokenVerifier, extra func(Router)) (http.Handler, error) {
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
	proxies := map[Upstream]http.Handler{}
	for _, u := range []Upstream{UpstreamUser, UpstreamEvent, UpstreamTicket, UpstreamNotification} {
		raw := cfg.Upstreams[u]
		if raw == "" {
			proxies[u] = notDeployed(u)
			continue
		}
		target, err := url.Parse(raw)
		if err != nil || target.Host == "" {
			return nil, errors.New("gateway: bad URL for the " + string(u) + " service")
		}
		proxies[u] = newForwarder(u, target, cfg)
	}

	r := chi.NewRouter()
	// Only a trusted proxy (an ingress that traces) may continue its trace into the platform.
	untrusted := web.UntrustedPeer(func(r *http.Request) bool { return !isTrusted(peerAddr(r.RemoteAddr), cfg.TrustedProxies) })
	r.Use(stripClientHeaders, web.RequestContext(log), web.Trace(untrusted), web.Instrument("gateway"), web.Recover, web.AccessLog, limitBody(cfg.MaxBodyBytes))
	if len(cfg.CORSOrigins) > 0 {
		r.Use(cors.New(cors.Options{
			AllowedOrigins: cfg.CORSOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete},
			AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key"},
			ExposedHeaders: []string{identity.HeaderRequestID, "Location", "Retry-After"},
			MaxAge:         600,
		}).Handler)
	}
	r.NotFound(web.NotFoundHandler)
	r.MethodNotAllowed(web.MethodNotAllowedHandler)
	for _, rt := range Routes {
		r.With(authenticate(verifier, rt.Auth)).Method(rt.Method, rt.Pattern, proxies[rt.Upstream])
	}
	if extra != nil {
		extra(r)
	}
	return r, nil
}

// stripClientHeaders deletes every header only the gateway may set, before anything reads
// them: identity headers, the request id, and forwarding headers.
func stripClientHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		identity.StripHeaders(r.Header)
		r.Header.Del(identity.HeaderRequestID)
		next.ServeHTTP(w, r)
	})
}

func limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				web.Error(w, r, errs.Newf(errs.TooLarge, "body_too_large", "the request body exceeds %d bytes", n))
				return
			}
			body := &clientBody{ReadCloser: http.MaxBytesReader(w, r.Body, n)}
			r.Body = body
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientBodyKey{}, body)))
		})
	}
}

// clientBody remembers why reading the client's request body failed, so that a proxy error
// caused by the client (too slow for the server's read timeout, gone, over the size limit)
// is not reported as a failure of the service behind.
type clientBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

type clientBodyKey struct{}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.mu.Lock()
		if b.err == nil { // the first failure is the cause; later reads only see its aftermath
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// failure returns the error reading the client's body ended with, if any.
func (b *clientBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// clientFailed answers a request whose own body could not be read: 408 when the client was
// too slow, 400 otherwise (if the client is gone, nobody reads it). It reports whether the
// request was such a one.
func clientFailed(w http.ResponseWriter, r *http.Request) bool {
	body, ok := r.Context().Value(clientBodyKey{}).(*clientBody)
	if !ok {
		return false
	}
	err := body.failure()
	if err == nil {
		return false
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		web.Error(w, r, err)
		return true
	}
	status, code, detail := http.StatusBadRequest, "unreadable_body", "the request body could not be read"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		status, code, detail = http.StatusRequestTimeout, "request_timeout", "the request body was not received in time"
	}
	web.LoggerFrom(r.Context()).InfoContext(r.Context(), "client body failed", "err", err)
	w.Header().Set("Connection", "close")
	web.WriteProblem(w, web.Problem{
		Type: web.ProblemTypeBase + code, Title: http.StatusText(status), Status: status, Detail: detail,
		Instance: r.URL.Path, Code: code, RequestID: web.RequestIDFrom(r.Context()),
	})
	return true
}

func notDeployed(u Upstream) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := errs.New(errs.Unavailable, "service_unavailable", "the "+string(u)+" service is not available")
		e.RetryAfter = 5
		web.Error(w, r, e)
	})
}

// ClientIP returns the caller's address: the peer, or, when the peer is a trusted proxy, the
// rightmost address in X-Forwarded-For that is not a trusted proxy.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	peer := peerAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
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
