package api_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sbor-dev/sbor/api"
)

const eventJSON = `{"id":"7f3e2d1c-0b9a-4c8d-8e7f-6a5b4c3d2e1f","organizer_id":"4c6d1a2b-8e3f-4a5b-9c7d-1e2f3a4b5c6d",` +
	`"title":"Go meetup","description":"","venue":"","starts_at":"2026-12-31T19:00:00Z","ends_at":"2026-12-31T22:00:00.5Z","status":"published"}`

const problem404 = `{"type":"https://sbor.dev/problems/event_not_found","title":"Not Found","status":404,` +
	`"detail":"no such event","instance":"/api/events/x","code":"event_not_found","request_id":"abc"}`

func headers(kv ...string) http.Header {
	h := http.Header{"X-Request-Id": {"3f2a9c1b7e4d4a5f8b6c0d1e2f3a4b5c"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func pngBytes(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestValidatorAcceptsResponsesThatMatch(t *testing.T) {
	v, err := api.NewResponseValidator()
	if err != nil {
		t.Fatal(err)
	}
	jsonH := headers("Content-Type", "application/json")
	for _, c := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
	}{
		{"event", "GET", "/api/events/7f3e2d1c-0b9a-4c8d-8e7f-6a5b4c3d2e1f", 200, jsonH, eventJSON},
		{"event list with a query", "GET", "/api/events?organizer=me&limit=5", 200, jsonH, `{"items":[` + eventJSON + `],"next_cursor":""}`},
		{"problem", "GET", "/api/events/not-a-uuid", 404, headers("Content-Type", "application/problem+json"), problem404},
		{"problem with field errors", "POST", "/api/events", 400, headers("Content-Type", "application/problem+json"),
			`{"type":"https://sbor.dev/problems/validation_failed","title":"Bad Request","status":400,"code":"validation_failed","errors":[{"field":"title","message":"must not be empty"}]}`},
		{"503 with Retry-After", "POST", "/api/events/x/tickets", 503, headers("Content-Type", "application/problem+json", "Retry-After", "1"),
			`{"type":"https://sbor.dev/problems/upstream_unavailable","title":"Service Unavailable","status":503,"code":"upstream_unavailable"}`},
		{"no content", "POST", "/api/auth/logout", 204, headers(), ""},
		{"png", "GET", "/api/tickets/01936b8e-4f2a-7c3d-9e1f-2a3b4c5d6e7f/qr", 200, headers("Content-Type", "image/png"), string(pngBytes(t))},
		{"nullable fields", "POST", "/api/notifications/01936b8e-5a1b-7d2c-8e3f-4a5b6c7d8e9f/read", 200, jsonH,
			`{"id":"01936b8e-5a1b-7d2c-8e3f-4a5b6c7d8e9f","type":"event.reminder","title":"t","body":"b","event_id":"7f3e2d1c-0b9a-4c8d-8e7f-6a5b4c3d2e1f","ticket_id":null,"created_at":"2026-12-02T09:30:00Z","read_at":"2026-12-02T09:31:00Z"}`},
		{"ticket code path", "POST", "/api/tickets/7K3M9-QXR2T-8VWZ4-N6P1H-5GJD0-B/validate", 200, jsonH, `{"valid":true,"status":"active","reason":""}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := v.Validate(c.method, c.path, c.status, c.header, []byte(c.body)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidatorRefusesResponsesThatDoNotMatch(t *testing.T) {
	v, err := api.NewResponseValidator()
	if err != nil {
		t.Fatal(err)
	}
	jsonH := headers("Content-Type", "application/json")
	problemH := headers("Content-Type", "application/problem+json")
	for _, c := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		want               string
	}{
		{"missing field", "GET", "/api/events/x", 200, jsonH, strings.Replace(eventJSON, `"venue":"",`, "", 1), "venue"},
		{"undocumented field", "GET", "/api/events/x", 200, jsonH, strings.Replace(eventJSON, `{`, `{"secret":1,`, 1), "secret"},
		{"wrong enum", "GET", "/api/events/x", 200, jsonH, strings.Replace(eventJSON, `"published"`, `"live"`, 1), "status"},
		{"time not in UTC", "GET", "/api/events/x", 200, jsonH, strings.Replace(eventJSON, `19:00:00Z`, `21:00:00+02:00`, 1), "UTC"},
		{"not a uuid", "GET", "/api/events/x", 200, jsonH, strings.Replace(eventJSON, `"7f3e2d1c-0b9a-4c8d-8e7f-6a5b4c3d2e1f"`, `"42"`, 1), "UUID"},
		{"undeclared status", "GET", "/api/events/x", 418, problemH, strings.Replace(problem404, "404", "418", 1), "status"},
		{"error as plain JSON", "GET", "/api/events/x", 404, jsonH, problem404, "Content-Type"},
		{"problem without code", "GET", "/api/events/x", 404, problemH, strings.Replace(problem404, `"code":"event_not_found",`, "", 1), "code"},
		{"problem status differs", "GET", "/api/events/x", 404, problemH, strings.Replace(problem404, `"status":404`, `"status":400`, 1), "status"},
		{"503 without Retry-After", "GET", "/api/events", 503, problemH,
			`{"type":"https://sbor.dev/problems/upstream_unavailable","title":"Service Unavailable","status":503,"code":"upstream_unavailable"}`, "Retry-After"},
		{"no request id", "GET", "/api/events/x", 200, http.Header{"Content-Type": {"application/json"}}, eventJSON, "X-Request-ID"},
		{"png that is not", "GET", "/api/tickets/x/qr", 200, headers("Content-Type", "image/png"), "GIF89a", "PNG"},
		{"body where none is documented", "POST", "/api/auth/logout", 204, jsonH, `{}`, "without a body"},
		{"list without next_cursor", "GET", "/api/tickets", 200, jsonH, `{"items":[]}`, "next_cursor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.Validate(c.method, c.path, c.status, c.header, []byte(c.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("the error does not mention %q: %v", c.want, err)
			}
		})
	}
}

func TestValidatorReportsUnknownRoutes(t *testing.T) {
	v, err := api.NewResponseValidator()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"GET", "/api/nope"}, {"DELETE", "/api/events/x"}, {"GET", "/internal/events/x"}, {"GET", "/api/openapi.yaml"}} {
		err := v.Validate(c[0], c[1], 200, headers(), nil)
		if !errors.Is(err, api.ErrUnknownRoute) {
			t.Errorf("%s %s: %v, want ErrUnknownRoute", c[0], c[1], err)
		}
	}
}

func TestValidatorIsSafeForConcurrentUse(t *testing.T) {
	v, err := api.NewResponseValidator()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if err := v.Validate("GET", "/api/events/x", 200, headers("Content-Type", "application/json"), []byte(eventJSON)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}
