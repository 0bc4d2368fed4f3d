package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// ErrUnknownRoute means the document has no operation for a method and path: the caller
// reached something the public API does not describe (or the document lacks it).
var ErrUnknownRoute = errors.New("api: no documented operation")

// Validator checks HTTP responses against the document. It is safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	opts   []openapi3.SchemaValidationOption
}

// pngSignature starts every PNG file.
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// uuidPattern is RFC 9562's textual form (any version, the nil UUID included).
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// StrictFormats are the string formats as the API promises them, stricter than JSON Schema's
// defaults: a date-time is RFC 3339 in UTC ("Z"), a uuid is a UUID.
func StrictFormats() map[string]openapi3.StringFormatValidator {
	return map[string]openapi3.StringFormatValidator{
		"date-time": openapi3.NewCallbackValidator(func(s string) error {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("not an RFC 3339 date-time: %q", s)
			}
			if !strings.HasSuffix(s, "Z") || t.Location() != time.UTC {
				return fmt.Errorf("date-time %q is not in UTC (Z)", s)
			}
			return nil
		}),
		"uuid": openapi3.NewCallbackValidator(func(s string) error {
			if !uuidPattern.MatchString(s) {
				return fmt.Errorf("not a UUID: %q", s)
			}
			return nil
		}),
	}
}

// NewResponseValidator loads and validates the document and returns a Validator for it.
func NewResponseValidator() (*Validator, error) {
	doc, err := LoadValid(context.Background())
	if err != nil {
		return nil, err
	}
	// The documented server is relative ("/"): match any host, as the tests' gateways listen
	// on random ports.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("api: route table: %w", err)
	}
	doc.SetStringFormatValidators(StrictFormats())
	return &Validator{doc: doc, router: router, opts: doc.GetSchemaValidationOptions()}, nil
}

// Validate checks one response of the gateway: the operation is found by method and
// concrete path (a query string, if any, is ignored for routing); the status must be one the
// operation declares; the documented headers must be present and valid; the body must match
// the declared media type and schema. It also checks what kin-openapi does not: a PNG body
// is a PNG, a response declared without a body has none, and a problem's status field
// equals the HTTP status.
func (v *Validator) Validate(method, path string, status int, header http.Header, body []byte) error {
	u, err := url.Parse(path)
	if err != nil {
		return fmt.Errorf("api: bad path %q: %w", path, err)
	}
	req, err := http.NewRequest(method, (&url.URL{Scheme: "http", Host: "gateway", Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}).String(), nil)
	if err != nil {
		return fmt.Errorf("api: bad request %s %q: %w", method, path, err)
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s (%v)", ErrUnknownRoute, method, u.Path, err)
	}
	where := fmt.Sprintf("%s %s → %d", method, route.Path, status)

	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus:   true, // an undeclared status is a contract violation
			MultiError:              true,
			SchemaValidationOptions: v.opts,
		},
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("api: %s: %w", where, err)
	}

	response := route.Operation.Responses.Status(status).Value
	if len(response.Content) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("api: %s: documented without a body, got %d bytes", where, len(body))
		}
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	switch {
	case mediaType == "image/png":
		if !bytes.HasPrefix(body, pngSignature) {
			return fmt.Errorf("api: %s: the image/png body is not a PNG", where)
		}
	case mediaType == "application/problem+json":
		var p struct {
			Status int `json:"status"`
		}
		if err := json.NewDecoder(io.LimitReader(bytes.NewReader(body), 1<<20)).Decode(&p); err != nil || p.Status != status {
			return fmt.Errorf("api: %s: the problem's status is %d, not the HTTP status", where, p.Status)
		}
	}
	return nil
}

// Document returns the parsed document the validator checks against. Callers must not
// change it.
func (v *Validator) Document() *openapi3.T { return v.doc }
