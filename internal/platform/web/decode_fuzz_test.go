package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// fuzzRequest has every kind of field a Sbor request has: strings, optional strings,
// numbers, times, and a nested object and list to reach deeper decoder paths.
type fuzzRequest struct {
	Name     string     `json:"name"`
	Optional *string    `json:"optional"`
	Count    *int       `json:"count"`
	Cents    int64      `json:"cents"`
	At       *time.Time `json:"at"`
	Flag     bool       `json:"flag"`
	Tags     []string   `json:"tags"`
	Nested   *struct {
		ID string `json:"id"`
	} `json:"nested"`
}

// FuzzDecodeBytes: whatever the body, DecodeBytes never panics; a refusal is a client error
// (400) with a message; an acceptance is one UTF-8 JSON object, which re-encodes to a body
// that decodes to the same value.
func FuzzDecodeBytes(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","count":1,"at":"2026-01-02T03:04:05Z","tags":["x"],"nested":{"id":"n"}}`,
		`{}`, ``, ` `, `null`, `[]`, `"x"`, `{"name":1}`, `{"unknown":true}`, `{}{}`, `{} x`,
		`{"at":"tomorrow"}`, `{"count":1e400}`, `{"count":1.5}`, "{\"name\":\"\xff\"}",
		`{"name":"\u0000"}`, `{"nested":{"id":{"deep":1}}}`, `{"name":"a","name":"b"}`, `{"Name":"case"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var dst fuzzRequest
		err := DecodeBytes(body, &dst)
		if err != nil {
			e, ok := errs.As(err)
			if !ok || StatusOf(e.Kind) != http.StatusBadRequest || e.Detail == "" {
				t.Fatalf("DecodeBytes(%q): %v is not a 400 with a detail", body, err)
			}
			return
		}
		if !utf8.Valid(body) || bytes.TrimSpace(body)[0] != '{' {
			t.Fatalf("DecodeBytes accepted %q, which is not one UTF-8 JSON object", body)
		}
		again, mErr := json.Marshal(dst)
		if mErr != nil {
			t.Fatalf("decoded value of %q does not encode: %v", body, mErr)
		}
		var back fuzzRequest
		if err := DecodeBytes(again, &back); err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", again, err)
		}
		if b2, _ := json.Marshal(back); !bytes.Equal(b2, again) {
			t.Fatalf("round trip of %q changed it: %s → %s", body, again, b2)
		}
	})
}

// FuzzDecode: the HTTP wrapper answers every body and content type with a decoded value or
// a client error (400, 413 or 415), never anything else.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"name":"a"}`), "application/json")
	f.Add([]byte(`{"name":"a"}`), "application/problem+json; charset=utf-8")
	f.Add([]byte(`{"name":"a"}`), "text/plain")
	f.Add([]byte(`a=b`), "application/x-www-form-urlencoded")
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{}`), "application/json; charset=\"")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		var dst fuzzRequest
		err := Decode(r, &dst)
		if err == nil {
			return
		}
		e, ok := errs.As(err)
		if !ok {
			t.Fatalf("Decode: %v is not a business error", err)
		}
		switch StatusOf(e.Kind) {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("Decode(%q, %q): status %d", body, contentType, StatusOf(e.Kind))
		}
		// The problem it becomes is well formed.
		w := httptest.NewRecorder()
		Error(w, r, err)
		var p Problem
		if w.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Status != w.Code || p.Code == "" {
			t.Fatalf("problem for %v: %d %q %s", err, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	})
}
