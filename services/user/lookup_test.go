package user_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// GET /internal/users?email= resolves an email the way registration normalised it, for the
// ticket service (door staff, transfers).
func TestInternalLookupByEmail(t *testing.T) {
	s := newServer(t, defaultLimits)
	u := s.register("Door.Keeper@Example.com", goodPassword)

	for _, q := range []string{"door.keeper@example.com", "  DOOR.KEEPER@example.COM  ", "Door.Keeper@Example.com"} {
		status, body := s.do("GET", "/internal/users?email="+url.QueryEscape(q), nil, nil)
		if status != http.StatusOK {
			t.Fatalf("lookup %q: %d %v", q, status, body)
		}
		if body["id"] != u["id"] || body["email"] != "door.keeper@example.com" || len(body) != 2 {
			t.Errorf("lookup %q: %v, want id %v and the normalised email only", q, body, u["id"])
		}
	}

	status, body := s.do("GET", "/internal/users?email="+url.QueryEscape("nobody@example.com"), nil, nil)
	if status != http.StatusNotFound || body["code"] != "user_not_found" {
		t.Errorf("unknown email: %d %v, want 404 user_not_found", status, body)
	}
	for name, q := range map[string]string{
		"missing": "", "empty": "?email=", "not an email": "?email=door-keeper", "display name": "?email=" + url.QueryEscape("Door <door.keeper@example.com>"),
		"too long": "?email=" + strings.Repeat("a", 250) + "%40example.com", "NUL": "?email=a%00b%40example.com",
	} {
		status, body := s.do("GET", "/internal/users"+q, nil, nil)
		if status != http.StatusBadRequest || body["code"] != "validation_failed" {
			t.Errorf("%s: %d %v, want 400 validation_failed", name, status, body)
		}
	}
}
