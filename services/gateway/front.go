package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/logging"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// call is one forwarded request on its way through the front end.
type call struct {
	fc    *fasthttp.RequestCtx
	route *route
	ctx   context.Context // request id, trace
	id    string          // request id
	// caller is who the access token says the caller is; the zero Identity when anonymous.
	caller identity.Identity
	// clientIP is read before the gateway drops the client's X-Forwarded-For.
	clientIP string
}

// serveRoute is the front end of one forwarded route. It does, in this order, what the
// services' middleware does for them (web.RequestContext, Trace, Instrument, Recover,
// AccessLog) and what the gateway adds (header stripping, authentication, CORS), then
// forwards.
func (g *Gateway) serveRoute(fc *fasthttp.RequestCtx, rt *route) {
	start := time.Now()
	g.inFlight.Inc()
	defer g.inFlight.Dec()

	peer, peerText := peerOf(fc)
	c := &call{fc: fc, route: rt, id: web.NewRequestID(), clientIP: peerText}
	trustedPeer := isTrusted(peer, g.cfg.TrustedProxies)
	if trustedPeer {
		c.clientIP = ClientIP(peer, forwardedFor(&fc.Request.Header), g.cfg.TrustedProxies)
	}
	c.ctx = logging.WithRequestID(context.Background(), c.id)
	stripClientRequest(&fc.Request.Header, trustedPeer)
	if trustedPeer && hasTraceHeaders(&fc.Request.Header) {
		c.ctx = tracing.Extract(c.ctx, requestHeaderCarrier{&fc.Request.Header})
	}
	var span trace.Span
	if tracing.Enabled() {
		c.ctx, span = tracing.Tracer().Start(c.ctx, rt.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", rt.Method),
			attribute.String("http.route", rt.Pattern),
			attribute.String("url.path", string(fc.URI().PathOriginal())),
		))
	}

	defer func() {
		if v := recover(); v != nil {
			g.log.ErrorContext(c.ctx, "panic", "value", v, "stack", string(debug.Stack()))
			g.problem(c, errs.New(errs.Internal, "internal", "an internal error occurred"))
		}
		c.finish(g, start, span)
	}()

	var err error
	if c.caller, err = g.authenticate(c); err != nil {
		g.problem(c, err)
		return
	}
	if rt.forward == nil {
		e := errs.New(errs.Unavailable, "service_unavailable", "the "+string(rt.Upstream)+" service is not available")
		e.RetryAfter = 5
		g.problem(c, e)
		return
	}
	rt.forward.forward(g, c)
}

// finish stamps the answer with the request id and CORS headers, and records the request in
// the metrics, the access log and the span.
func (c *call) finish(g *Gateway, start time.Time, span trace.Span) {
	h := &c.fc.Response.Header
	h.Set(identity.HeaderRequestID, c.id)
	g.cors.apply(&c.fc.Request.Header, h)
	status := c.fc.Response.StatusCode()
	took := time.Since(start)
	c.route.metrics.Observe(status, took)
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	if g.log.Enabled(c.ctx, level) {
		g.log.Log(c.ctx, level, "http request", "method", c.route.Method, "route", c.route.Pattern, "status", status,
			"bytes", len(c.fc.Response.Body()), "duration_ms", float64(took.Microseconds())/1000)
	}
	if span != nil {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}

// problem answers the call with err as problem+json, through web.Error, so the gateway's
// problems are the services' to the byte.
func (g *Gateway) problem(c *call, err error) {
	w := &answerWriter{fc: c.fc}
	r := (&http.Request{Method: c.route.Method, URL: &url.URL{Path: string(c.fc.URI().PathOriginal())}, Header: http.Header{}}).WithContext(web.WithLogger(c.ctx, g.log))
	web.Error(w, r, err)
}

// requestFailed answers a request fasthttp could not read (fasthttp.Server.ErrorHandler):
// 413 for a body over the limit, 431 for headers over theirs, 408 for a client too slow
// with either, 400 for anything malformed. The connection is closed after.
func (g *Gateway) requestFailed(fc *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	var status int
	var code, detail string
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, code, detail = http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the request body exceeds %d bytes", g.cfg.MaxBodyBytes)
	case errors.As(err, &small):
		status, code, detail = http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", fmt.Sprintf("the request line and headers exceed %d bytes", maxHeaderBytes)
	case errors.As(err, &ne) && ne.Timeout():
		status, code, detail = http.StatusRequestTimeout, "request_timeout", "the request was not received in time"
	default:
		status, code, detail = http.StatusBadRequest, "bad_request", "the request could not be parsed as HTTP/1.1"
	}
	lingerOnClose(fc) // fasthttp closes the connection after this answer
	id := web.NewRequestID()
	g.log.Log(context.Background(), slog.LevelInfo, "request refused", logging.RequestIDKey, id, "status", status, "err", err)
	fc.Response.Reset()
	fc.Response.Header.Set(identity.HeaderRequestID, id)
	web.WriteProblem(&answerWriter{fc: fc}, web.Problem{
		Type: web.ProblemTypeBase + code, Title: http.StatusText(status), Status: status, Detail: detail,
		Instance: string(fc.URI().PathOriginal()), Code: code, RequestID: id,
	})
}

// answerWriter is an http.ResponseWriter over a fasthttp answer, for the error paths that
// reuse web's problem writers.
type answerWriter struct {
	fc     *fasthttp.RequestCtx
	header http.Header
}

func (w *answerWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *answerWriter) WriteHeader(status int) {
	for k, vs := range w.header {
		w.fc.Response.Header.Del(k)
		for _, v := range vs {
			w.fc.Response.Header.Add(k, v)
		}
	}
	w.fc.Response.SetStatusCode(status)
	w.fc.Response.ResetBody()
}

func (w *answerWriter) Write(b []byte) (int, error) { return w.fc.Response.BodyWriter().Write(b) }

// stripClientRequest deletes what only the gateway may set: identity headers, the request
// id, forwarding headers; hop-by-hop headers, which are not the service's business; and,
// unless the peer is a trusted proxy (an ingress that traces), the trace context, which only
// such a proxy may continue into the platform.
func stripClientRequest(h *fasthttp.RequestHeader, trustedPeer bool) {
	rule := dropFromRequest
	if !trustedPeer {
		rule |= dropTraceContext
	}
	sweepHeaders(h, h.Peek("Connection"), h.All(), rule)
}

func hasTraceHeaders(h *fasthttp.RequestHeader) bool {
	return len(h.Peek("Traceparent")) > 0 || len(h.Peek("Baggage")) > 0
}

// forwardedFor returns the X-Forwarded-For values (they only matter from a trusted peer).
func forwardedFor(h *fasthttp.RequestHeader) []string {
	var values []string
	for _, v := range h.PeekAll("X-Forwarded-For") {
		values = append(values, string(v))
	}
	return values
}
