package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// MaxBodyBytes caps every JSON request body.
const MaxBodyBytes = 64 << 10

// Decode reads exactly one JSON object from the body into dst, strictly: the media type must
// be JSON, unknown fields and trailing data are refused, and the body is capped. Every failure
// is a client error with a sentence saying what is wrong.
func Decode(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errs.New(errs.UnsupportedMediaType, "unsupported_media_type", "the request body must be application/json")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return errs.New(errs.Invalid, "unreadable_body", "the request body could not be read")
	}
	if len(body) > MaxBodyBytes {
		return errs.Newf(errs.TooLarge, "body_too_large", "the request body exceeds %d bytes", MaxBodyBytes)
	}
	return DecodeBytes(body, dst)
}

// DecodeBytes is Decode's parser, separate so fuzz tests can reach it without HTTP.
func DecodeBytes(body []byte, dst any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return errs.New(errs.Invalid, "empty_body", "a JSON request body is required")
	}
	// JSON text is UTF-8 (RFC 8259); encoding/json would silently turn bad bytes into U+FFFD.
	if !utf8.Valid(body) {
		return errs.New(errs.Invalid, "malformed_json", "the body must be UTF-8")
	}
	// encoding/json decodes null into a struct as "nothing", which would let a body of
	// null pass as an empty object.
	if trimmed[0] != '{' {
		return errs.New(errs.Invalid, "malformed_json", "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errs.New(errs.Invalid, "malformed_json", describeJSONError(err))
	}
	if dec.More() {
		return errs.New(errs.Invalid, "malformed_json", "the body must hold exactly one JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errs.New(errs.Invalid, "malformed_json", "the body must hold exactly one JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be a %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends too early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		var timeErr *time.ParseError
		if errors.As(err, &timeErr) || strings.Contains(err.Error(), "Time.UnmarshalJSON") {
			return "a time must be RFC 3339, for example 2026-12-31T19:00:00Z"
		}
		return "the body is not valid JSON for this request"
	}
}

func jsonKind(k string) string {
	switch k {
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float64":
		return "number"
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

// Respond writes v as JSON with the given status.
func Respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}
