// Package logging builds the process logger: structured slog, JSON by default (what log
// pipelines parse), text for a terminal. Every line logged with a context carries the
// request id and the trace and span ids that context holds (see ContextHandler), so a log
// line leads to its request and its trace.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Field names the context handler adds.
const (
	RequestIDKey = "request_id"
	TraceIDKey   = "trace_id"
	SpanIDKey    = "span_id"
)

// New returns a logger writing to w at the given level ("debug", "info", "warn", "error") in
// the given format ("json" or "text"), with ContextHandler's fields.
func New(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if strings.EqualFold(format, "text") {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewContextHandler(h))
}

type requestIDCtxKey struct{}

// WithRequestID returns ctx carrying the request id (web's middleware sets it; a Kafka
// consumer may set the one a message carries).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDCtxKey{}, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDCtxKey{}).(string)
	return id
}

// ContextHandler wraps a handler so that every record logged with a context (InfoContext,
// Log(ctx, ...)) carries request_id when the context has one and trace_id and span_id when
// it holds a valid span context (a recording span, or a remote parent extracted from a
// traceparent while tracing is off). A logger that already has request_id among its
// attributes (web's request logger) does not get it twice.
//
// The fields are added at the top level only while no group is open (WithGroup); inside a
// group they land in the group.
type ContextHandler struct {
	inner slog.Handler
	// hasRequestID: request_id is already among the logger's attributes.
	hasRequestID bool
}

// NewContextHandler wraps h.
func NewContextHandler(h slog.Handler) *ContextHandler {
	if ch, ok := h.(*ContextHandler); ok {
		return ch
	}
	return &ContextHandler{inner: h}
}

// Enabled reports whether the wrapped handler logs at level.
func (h *ContextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the context's fields and passes the record on.
func (h *ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.inner.Handle(ctx, r)
	}
	var id string
	if !h.hasRequestID {
		id = RequestID(ctx)
	}
	sc := trace.SpanContextFromContext(ctx)
	if id == "" && !sc.IsValid() {
		return h.inner.Handle(ctx, r)
	}
	r = r.Clone() // the record may be shared with other handlers: never append to its storage
	if id != "" {
		r.AddAttrs(slog.String(RequestIDKey, id))
	}
	if sc.IsValid() {
		r.AddAttrs(slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns a handler with attrs added, remembering whether request_id is among them.
func (h *ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.hasRequestID
	for _, a := range attrs {
		has = has || a.Key == RequestIDKey
	}
	return &ContextHandler{inner: h.inner.WithAttrs(attrs), hasRequestID: has}
}

// WithGroup returns a handler that qualifies later attributes with name.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	return &ContextHandler{inner: h.inner.WithGroup(name), hasRequestID: h.hasRequestID}
}

// Unwrap returns the wrapped handler.
func (h *ContextHandler) Unwrap() slog.Handler { return h.inner }
