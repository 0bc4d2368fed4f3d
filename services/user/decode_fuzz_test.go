package user

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// storable reports whether s can be stored as PostgreSQL text.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func mustBeClientError(t *testing.T, what string, err error) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || web.StatusOf(e.Kind) < 400 || web.StatusOf(e.Kind) > 499 {
		t.Fatalf("%s: %v is not a client error", what, err)
	}
}

// FuzzRequests decodes any body as each of the user service's requests, the way its
// handlers do, and runs what runs before the database: registration validation, the login
// pre-check, the refresh token's parse. Nothing panics, every refusal is a 4xx, and what is
// accepted is storable text within the limits.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"email":"ann@example.com","name":"Ann","password":"correct-horse-9"}`,
		`{"email":"ANN@Example.com ","password":"x"}`, `{"refresh_token":"sbr_` + strings.Repeat("A", 43) + `"}`,
		`{"email":"a\u0000@example.com","name":"A","password":"correct-horse-9"}`, `{"name":"\u202eevil"}`,
		`{"email":"\"quoted\"@example.com","name":"Q","password":"correct-horse-9"}`, `{"email":1}`, `{"role":"organizer"}`,
		`{"email":"ann@example.com","name":"` + strings.Repeat("n", 101) + `","password":"aaaaaaaaaa"}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var reg registerRequest
		if err := web.DecodeBytes(body, &reg); err != nil {
			mustBeClientError(t, "register decode", err)
		} else if nu, err := NewUser(reg).Validate(); err != nil {
			mustBeClientError(t, "register validate", err)
		} else {
			if !storable(nu.Email) || !storable(nu.Name) || !validEmail(nu.Email) || nu.Email != NormalizeEmail(nu.Email) {
				t.Fatalf("registration accepted email %q name %q", nu.Email, nu.Name)
			}
			if n := utf8.RuneCountInString(nu.Name); n == 0 || n > MaxNameLen || len(nu.Password) > MaxPasswordLen || utf8.RuneCountInString(nu.Password) < MinPasswordLen {
				t.Fatalf("registration accepted name %q password of %d bytes", nu.Name, len(nu.Password))
			}
		}

		var login loginRequest
		if err := web.DecodeBytes(body, &login); err != nil {
			mustBeClientError(t, "login decode", err)
		} else if email := NormalizeEmail(login.Email); plausibleCredentials(email, login.Password) && !storable(email) {
			t.Fatalf("login would store the attempt key of %q", email)
		}

		var refresh refreshRequest
		if err := web.DecodeBytes(body, &refresh); err != nil {
			mustBeClientError(t, "refresh decode", err)
		} else if h, ok := hashRefreshToken(refresh.RefreshToken); ok && (len(h) != 32 || !strings.HasPrefix(refresh.RefreshToken, refreshPrefix)) {
			t.Fatalf("refresh token %q hashed to %d bytes", refresh.RefreshToken, len(h))
		}
	})
}
