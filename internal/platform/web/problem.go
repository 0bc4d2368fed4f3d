package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// ProblemTypeBase prefixes every problem type URI; the suffix is the error's code.
const ProblemTypeBase = "https://sbor.dev/problems/"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Code      string            `json:"code"`
	RequestID string            `json:"request_id,omitempty"`
	Errors    []errs.FieldError `json:"errors,omitempty"`
}

var kindStatus = map[errs.Kind]int{
	errs.Internal:             http.StatusInternalServerError,
	errs.Invalid:              http.StatusBadRequest,
	errs.Unauthenticated:      http.StatusUnauthorized,
	errs.Forbidden:            http.StatusForbidden,
	errs.NotFound:             http.StatusNotFound,
	errs.Conflict:             http.StatusConflict,
	errs.Unprocessable:        http.StatusUnprocessableEntity,
	errs.TooManyRequests:      http.StatusTooManyRequests,
	errs.Unavailable:          http.StatusServiceUnavailable,
	errs.UnsupportedMediaType: http.StatusUnsupportedMediaType,
	errs.TooLarge:             http.StatusRequestEntityTooLarge,
}

// StatusOf returns the HTTP status for a business error kind.
func StatusOf(kind errs.Kind) int { return kindStatus[kind] }

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Error renders err as problem+json. Business errors keep their detail; anything else is an
// internal error whose cause is logged but never shown to the client.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errs.As(err)
	if !ok {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e = errs.Newf(errs.TooLarge, "body_too_large", "the request body exceeds %d bytes", mbe.Limit)
		} else {
			LoggerFrom(r.Context()).ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
			e = errs.New(errs.Internal, "internal", "an internal error occurred; the request id identifies it in our logs")
		}
	} else if e.Kind == errs.Internal || e.Kind == errs.Unavailable {
		LoggerFrom(r.Context()).WarnContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", e)
	}
	status := StatusOf(e.Kind)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteProblem(w, Problem{
		Type:      ProblemTypeBase + e.Code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    e.Detail,
		Instance:  r.URL.Path,
		Code:      e.Code,
		RequestID: RequestIDFrom(r.Context()),
		Errors:    e.Fields,
	})
}

// NotFoundHandler answers unknown routes with problem+json.
func NotFoundHandler(w http.ResponseWriter, r *http.Request) {
	Error(w, r, errs.New(errs.NotFound, "route_not_found", "no route matches "+r.Method+" "+r.URL.Path))
}

// MethodNotAllowedHandler answers a known route called with the wrong method.
func MethodNotAllowedHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/problem+json")
	WriteProblem(w, Problem{
		Type: ProblemTypeBase + "method_not_allowed", Title: http.StatusText(http.StatusMethodNotAllowed),
		Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not allowed on " + r.URL.Path,
		Instance: r.URL.Path, Code: "method_not_allowed", RequestID: RequestIDFrom(r.Context()),
	})
}
