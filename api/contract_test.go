package api_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/api"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/testkit"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/gateway"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The contract test: the document and the gateway's route table describe the same API, and
// every operation declares what the platform can answer, the way DESIGN.md promises it.

func loadValid(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := api.LoadValid(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

var templateParam = regexp.MustCompile(`\{[^}/]+\}`)

// routeKey names an operation by method and path with its parameters anonymised, so
// /api/tickets/{code}/checkin (document) matches /api/tickets/{id}/checkin (gateway): path
// parameters are matched by position.
func routeKey(method, path string) string {
	return strings.ToUpper(method) + " " + templateParam.ReplaceAllString(path, "{}")
}

type operation struct {
	method, path string
	op           *openapi3.Operation
	item         *openapi3.PathItem
}

func operations(doc *openapi3.T) []operation {
	var out []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out = append(out, operation{method, path, op, item})
		}
	}
	slices.SortFunc(out, func(a, b operation) int {
		return strings.Compare(routeKey(a.method, a.path), routeKey(b.method, b.path))
	})
	return out
}

func TestDocumentLoadsAndValidates(t *testing.T) {
	doc := loadValid(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if len(doc.Paths.Map()) == 0 {
		t.Fatal("the document has no paths")
	}
}

func TestDocumentAndGatewayRoutesAgree(t *testing.T) {
	doc := loadValid(t)
	documented := map[string]bool{}
	for _, o := range operations(doc) {
		documented[routeKey(o.method, o.path)] = true
	}
	routed := map[string]bool{}
	for _, rt := range gateway.Routes {
		k := routeKey(rt.Method, rt.Pattern)
		routed[k] = true
		if !documented[k] {
			t.Errorf("the gateway routes %s %s but the document does not describe it", rt.Method, rt.Pattern)
		}
	}
	for k := range documented {
		if !routed[k] {
			t.Errorf("the document describes %s but the gateway does not route it", k)
		}
	}
}

func gatewayAuth(method, path string) (gateway.Auth, bool) {
	for _, rt := range gateway.Routes {
		if routeKey(rt.Method, rt.Pattern) == routeKey(method, path) {
			return rt.Auth, true
		}
	}
	return 0, false
}

func TestOperationsDeclareWhatTheyAnswer(t *testing.T) {
	doc := loadValid(t)
	ids := map[string]bool{}
	for _, o := range operations(doc) {
		name := o.method + " " + o.path
		t.Run(name, func(t *testing.T) {
			op := o.op
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("operationId %q is missing or not unique", op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Summary == "" || len(op.Tags) == 0 {
				t.Error("every operation needs a summary and a tag")
			}

			// Security as the gateway applies it.
			auth, _ := gatewayAuth(o.method, o.path)
			if op.Security == nil {
				t.Fatal("security must be declared on every operation")
			}
			var anonymous, bearer bool
			for _, req := range *op.Security {
				if len(req) == 0 {
					anonymous = true
				}
				if _, ok := req["bearerAuth"]; ok {
					bearer = true
				}
			}
			switch auth {
			case gateway.Public:
				if len(*op.Security) != 0 {
					t.Error("a public route must declare security: []")
				}
			case gateway.Optional:
				if !anonymous || !bearer {
					t.Error("an optional-token route must declare security: [{}, {bearerAuth: []}]")
				}
			case gateway.Required:
				if anonymous || !bearer {
					t.Error("a route that needs a token must declare security: [{bearerAuth: []}] only")
				}
			}

			// Statuses: a success, and the gateway's answers that any route can get.
			var success bool
			for status := range op.Responses.Map() {
				if n, _ := strconv.Atoi(status); n >= 200 && n < 300 {
					success = true
				}
			}
			if !success {
				t.Error("no 2xx response")
			}
			if op.Responses.Default() != nil {
				t.Error("no default response: every status is declared, so undeclared ones are caught")
			}
			// 401 for every route: Required ones without a token, and any route with an
			// invalid one.
			need := []int{http.StatusUnauthorized, http.StatusInternalServerError, http.StatusServiceUnavailable}
			if op.RequestBody != nil {
				need = append(need, http.StatusBadRequest, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
			}
			for _, p := range op.Parameters {
				if p.Value.In == "query" {
					need = append(need, http.StatusBadRequest)
				}
			}
			if auth == gateway.Required && o.item.Parameters.GetByInAndName("path", "id") != nil {
				need = append(need, http.StatusNotFound) // an owned resource by id: unknown or not yours
			}
			for _, st := range need {
				if op.Responses.Status(st) == nil {
					t.Errorf("does not declare %d", st)
				}
			}

			for status, rr := range op.Responses.Map() {
				r := rr.Value
				if r.Headers["X-Request-ID"] == nil || !r.Headers["X-Request-ID"].Value.Required {
					t.Errorf("%s: X-Request-ID must be a required header of every response", status)
				}
				n, _ := strconv.Atoi(status)
				if n < 400 {
					for ct, mt := range r.Content {
						if ct == "application/json" && mt.Example == nil && len(mt.Examples) == 0 {
							t.Errorf("%s: no example", status)
						}
					}
					continue
				}
				checkProblemResponse(t, status, r)
				if n == http.StatusTooManyRequests || n == http.StatusServiceUnavailable {
					if h := r.Headers["Retry-After"]; h == nil || !h.Value.Required {
						t.Errorf("%s: Retry-After must be a required header", status)
					}
				}
			}

			if rb := op.RequestBody; rb != nil {
				if !rb.Value.Required || len(rb.Value.Content) != 1 || rb.Value.Content["application/json"] == nil {
					t.Fatal("a request body is required and application/json only")
				}
				mt := rb.Value.Content["application/json"]
				if ap := mt.Schema.Value.AdditionalProperties; ap.Has == nil || *ap.Has {
					t.Error("the request body schema must have additionalProperties: false (the services refuse unknown fields)")
				}
				if mt.Example == nil && len(mt.Examples) == 0 {
					t.Error("the request body has no example")
				}
			}
		})
	}
}

func checkProblemResponse(t *testing.T, status string, r *openapi3.Response) {
	t.Helper()
	mt := r.Content["application/problem+json"]
	if len(r.Content) != 1 || mt == nil {
		t.Errorf("%s: an error must be application/problem+json only", status)
		return
	}
	if mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Problem" {
		t.Errorf("%s: an error must use the shared Problem schema", status)
	}
	if mt.Example == nil && len(mt.Examples) == 0 {
		t.Errorf("%s: no example", status)
	}
	codes, _ := r.Extensions[api.ProblemCodesExtension].([]any)
	if len(codes) == 0 {
		t.Errorf("%s: %s must list the problem codes", status, api.ProblemCodesExtension)
	}
	if ex, ok := mt.Example.(map[string]any); ok {
		if strconv.Itoa(int(number(ex["status"]))) != status {
			t.Errorf("%s: the example's status is %v", status, ex["status"])
		}
		if !slices.Contains(codes, ex["code"]) {
			t.Errorf("%s: the example's code %v is not in %s %v", status, ex["code"], api.ProblemCodesExtension, codes)
		}
	}
}

func number(v any) float64 {
	switch v := v.(type) {
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	case float64:
		return v
	}
	return -1
}

// TestExamplesUseStrictFormats checks every example against its schema with the formats as
// the API promises them (times in UTC, real UUIDs), which kin-openapi's own example check
// does not know.
func TestExamplesUseStrictFormats(t *testing.T) {
	doc := loadValid(t)
	doc.SetStringFormatValidators(api.StrictFormats())
	check := func(where string, mt *openapi3.MediaType, asResponse bool) {
		if mt.Schema == nil {
			return
		}
		var values []any
		if mt.Example != nil {
			values = append(values, mt.Example)
		}
		for _, ex := range mt.Examples {
			values = append(values, ex.Value.Value)
		}
		opts := []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020(), openapi3.VisitAsRequest()}
		if asResponse {
			opts[1] = openapi3.VisitAsResponse()
		}
		for _, v := range values {
			if err := doc.ValidateSchemaJSON(mt.Schema.Value, v, opts...); err != nil {
				t.Errorf("%s: example: %v", where, err)
			}
		}
	}
	for _, o := range operations(doc) {
		if o.op.RequestBody != nil {
			for ct, mt := range o.op.RequestBody.Value.Content {
				check(o.method+" "+o.path+" request "+ct, mt, false)
			}
		}
		for status, rr := range o.op.Responses.Map() {
			for ct, mt := range rr.Value.Content {
				check(o.method+" "+o.path+" "+status+" "+ct, mt, true)
			}
		}
	}
}

// Problem codes that services produce but no public operation can answer with.
var internalOnlyCodes = map[string]string{
	"invalid_status":     "GET /internal/events/{id}/tickets (holders) only",
	"not_published":      "POST /internal/events/{id}/remind only",
	"invalid_event_data": "the notification service's Kafka consumer",
	"route_not_found":    "no route: not an operation of the document",
	"method_not_allowed": "no route: not an operation of the document",
	"headers_too_large":  "the gateway's HTTP server, before routing: a request line and headers over 32 KiB (431)",
	"bad_request":        "the gateway's HTTP server, before routing: bytes that are not an HTTP/1.1 request",
}

// TestProblemCodesMatchTheCode: every code the document lists is one the code produces, and
// every code a public route can produce is documented somewhere.
func TestProblemCodesMatchTheCode(t *testing.T) {
	doc := loadValid(t)
	documented := map[string]bool{}
	add := func(r *openapi3.Response) {
		codes, _ := r.Extensions[api.ProblemCodesExtension].([]any)
		for _, c := range codes {
			documented[c.(string)] = true
		}
	}
	for _, rr := range doc.Components.Responses {
		add(rr.Value)
	}
	for _, o := range operations(doc) {
		for _, rr := range o.op.Responses.Map() {
			add(rr.Value)
		}
	}

	produced := producedCodes(t, "../services", "../internal/platform")
	for code := range documented {
		if !produced[code] {
			t.Errorf("the document lists problem code %q, which no service produces", code)
		}
	}
	for code := range produced {
		if !documented[code] && internalOnlyCodes[code] == "" {
			t.Errorf("services produce problem code %q, which the document does not list", code)
		}
	}
}

// producedCodes finds the problem codes in the Go source under dirs: the code argument of
// errs.New and errs.Newf, a Code field in a composite literal, a string assigned to a
// variable named code, and the gateway's unauthorized(c, code, ...).
func producedCodes(t *testing.T, dirs ...string) map[string]bool {
	t.Helper()
	codes := map[string]bool{}
	lit := func(e ast.Expr) {
		if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == gotoken.STRING {
			if s, err := strconv.Unquote(bl.Value); err == nil {
				codes[s] = true
			}
		}
	}
	fset := gotoken.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					switch fn := n.Fun.(type) {
					case *ast.SelectorExpr:
						if x, ok := fn.X.(*ast.Ident); ok && x.Name == "errs" && (fn.Sel.Name == "New" || fn.Sel.Name == "Newf") && len(n.Args) >= 2 {
							lit(n.Args[1])
						}
					case *ast.Ident:
						if fn.Name == "unauthorized" && len(n.Args) >= 2 {
							lit(n.Args[1])
						}
					}
				case *ast.KeyValueExpr:
					if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Code" {
						lit(n.Value)
					}
				case *ast.AssignStmt:
					// status, code, detail := http.StatusBadRequest, "unreadable_body", "..."
					for i, lhs := range n.Lhs {
						if id, ok := lhs.(*ast.Ident); ok && id.Name == "code" && len(n.Rhs) == len(n.Lhs) {
							lit(n.Rhs[i])
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(codes) < 20 {
		t.Fatalf("found only %d problem codes in %v: is the source scan broken?", len(codes), dirs)
	}
	return codes
}

// acceptGood is a token verifier for tests that need no real keys: "good" is a user's token,
// anything else is invalid.
type acceptGood struct{}

func (acceptGood) Verify(_ context.Context, raw string) (token.Verified, error) {
	if raw != "good" {
		return token.Verified{}, errors.New("bad token")
	}
	return token.Verified{UserID: uuid.New(), Role: "user", Expiry: time.Now().Add(time.Hour)}, nil
}

// TestGatewayAnswersAsDocumented checks the answers the gateway gives on its own, for every
// route: 401 without a needed token or with an invalid one, 503 while a service is not
// deployed, 413 for a body over its limit.
func TestGatewayAnswersAsDocumented(t *testing.T) {
	v, err := api.NewResponseValidator()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(slog.New(slog.DiscardHandler), gateway.Config{MaxBodyBytes: 1024}, acceptGood{}, gateway.MountDocs)
	if err != nil {
		t.Fatal(err)
	}
	gw := testkit.ServeLoopback(t, g.Serve)
	doc := v.Document()
	for _, rt := range gateway.Routes {
		// Every path parameter ({id}, and {user_id} of DELETE .../staff/{user_id}) is a UUID.
		path := templateParam.ReplaceAllStringFunc(rt.Pattern, func(string) string { return uuid.NewString() })
		hasBody := false
		for _, o := range operations(doc) {
			if routeKey(o.method, o.path) == routeKey(rt.Method, rt.Pattern) {
				hasBody = o.op.RequestBody != nil
			}
		}
		type try struct {
			bearer string
			body   string
			want   int
		}
		tries := []try{{"junk", "", 401}, {"good", "", 503}}
		if rt.Auth == gateway.Required {
			tries = append(tries, try{"", "", 401})
		} else {
			tries = append(tries, try{"", "", 503})
		}
		if hasBody {
			tries = append(tries, try{"good", strings.Repeat("x", 2048), 413}, try{"good", "{}", 503})
		}
		for _, tr := range tries {
			req, _ := http.NewRequest(rt.Method, gw+path, strings.NewReader(tr.body))
			if tr.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tr.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tr.bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tr.want {
				t.Errorf("%s %s (token %q): %d, want %d: %s", rt.Method, rt.Pattern, tr.bearer, resp.StatusCode, tr.want, body)
			}
			if err := v.Validate(rt.Method, path, resp.StatusCode, resp.Header, body); err != nil {
				t.Errorf("%s %s: %v", rt.Method, rt.Pattern, err)
			}
		}
	}
}
