// Package errs carries business errors across layers without tying the business layer to HTTP.
//
// A business function returns an *errs.Error with a Kind (what went wrong, in terms of the
// caller's request) and a stable machine-readable Code; the web layer maps Kind to an HTTP
// status and renders RFC 9457 problem+json. Any other error is an internal failure.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller should do about it.
type Kind int

const (
	// Internal is a failure of ours; the caller can only retry later.
	Internal Kind = iota
	Invalid
	Unauthenticated
	Forbidden
	NotFound
	Conflict
	Unprocessable
	TooManyRequests
	Unavailable
	UnsupportedMediaType
	TooLarge
)

// FieldError names one invalid request field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a business error: a kind, a stable code, a human sentence and optional field errors.
type Error struct {
	Kind   Kind
	Code   string
	Detail string
	Fields []FieldError
	// RetryAfter, in seconds, is sent as Retry-After for TooManyRequests and Unavailable.
	RetryAfter int
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return e.Code + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind.
func New(kind Kind, code, detail string) *Error {
	return &Error{Kind: kind, Code: code, Detail: detail}
}

// Newf is New with a formatted detail.
func Newf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Is reports whether err is a business error of the given kind.
func Is(err error, kind Kind) bool {
	e, ok := As(err)
	return ok && e.Kind == kind
}

// Validation collects field errors; Err returns nil when there are none.
type Validation struct{ fields []FieldError }

// Add records a field error.
func (v *Validation) Add(field, message string) {
	v.fields = append(v.fields, FieldError{field, message})
}

// Check records a field error when ok is false.
func (v *Validation) Check(ok bool, field, message string) {
	if !ok {
		v.Add(field, message)
	}
}

// Err returns an Invalid error listing every field error, or nil.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	detail := v.fields[0].Field + ": " + v.fields[0].Message
	if len(v.fields) > 1 {
		detail = fmt.Sprintf("%s (and %d more)", detail, len(v.fields)-1)
	}
	return &Error{Kind: Invalid, Code: "validation_failed", Detail: detail, Fields: v.fields}
}
