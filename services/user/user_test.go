package user_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/platform/web"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/user"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// server is a user service on a fresh database, called as the gateway would call it.
type server struct {
	t   *testing.T
	url string
	key ed25519.PrivateKey
}

func newServer(t *testing.T, limits user.Limits) *server {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(context.Background(), pool, user.Migrations()...); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer := token.NewSigner(key, token.DefaultIssuer, token.DefaultAudience, 15*time.Minute)
	core := user.NewCore(user.NewStore(pool), signer, time.Hour, limits)
	r := web.NewRouter(slog.New(slog.DiscardHandler))
	user.Routes(r, core)
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return &server{t: t, url: ts.URL, key: key}
}

// rateWindow is the tests' login window. Windows are fixed (multiples of the window since the
// epoch), so a short one could start anew in the middle of a test and reset its counts.
const rateWindow = 30 * 24 * time.Hour

var defaultLimits = user.Limits{Window: rateWindow, PerIP: 1000, PerAccount: 1000}

// do sends a JSON request; as, when set, is the identity the gateway would put in headers.
func (s *server) do(method, path string, body any, as *identity.Identity) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if as != nil {
		identity.SetHeaders(req.Header, *as)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		s.t.Fatalf("%s %s: error without problem+json: %d %s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, out
}

func (s *server) register(email, password string) map[string]any {
	s.t.Helper()
	status, body := s.do("POST", "/api/auth/register", map[string]string{"email": email, "name": "Test User", "password": password}, nil)
	if status != http.StatusCreated {
		s.t.Fatalf("register %s: %d %v", email, status, body)
	}
	return body
}

func (s *server) login(email, password string) (int, map[string]any) {
	return s.do("POST", "/api/auth/login", map[string]string{"email": email, "password": password}, nil)
}

func (s *server) verify(access string) token.Verified {
	s.t.Helper()
	v := &token.Verifier{Keys: token.StaticKeys{token.KeyID(s.key.Public().(ed25519.PublicKey)): s.key.Public().(ed25519.PublicKey)},
		Issuer: token.DefaultIssuer, Audience: token.DefaultAudience}
	got, err := v.Verify(context.Background(), access)
	if err != nil {
		s.t.Fatalf("issued token does not verify: %v", err)
	}
	return got
}

const goodPassword = "correct-horse-9"

func TestRegisterLoginMeBecomeOrganizer(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	u := s.register("  Ann@Example.COM ", goodPassword)
	if u["email"] != "ann@example.com" || u["role"] != "user" || u["name"] != "Test User" || u["id"] == "" {
		t.Fatalf("registered user: %v", u)
	}
	if _, ok := u["password_hash"]; ok {
		t.Fatal("password hash leaked")
	}
	status, pair := s.login("ANN@example.com", goodPassword)
	if status != http.StatusOK || pair["token_type"] != "Bearer" || pair["expires_in"] != float64(900) {
		t.Fatalf("login: %d %v", status, pair)
	}
	v := s.verify(pair["access_token"].(string))
	if v.Role != "user" || v.UserID.String() != u["id"] {
		t.Fatalf("token claims: %+v", v)
	}
	me := identity.Identity{UserID: v.UserID, Role: identity.RoleUser}
	status, body := s.do("GET", "/api/users/me", nil, &me)
	if status != http.StatusOK || body["email"] != "ann@example.com" {
		t.Fatalf("me: %d %v", status, body)
	}
	if status, _ := s.do("GET", "/api/users/me", nil, nil); status != http.StatusUnauthorized {
		t.Fatalf("me anonymous: %d", status)
	}
	for i := 0; i < 2; i++ { // idempotent
		status, body = s.do("POST", "/api/users/me/become-organizer", nil, &me)
		if status != http.StatusOK {
			t.Fatalf("become organizer: %d %v", status, body)
		}
		if body["user"].(map[string]any)["role"] != "organizer" {
			t.Fatalf("role not changed: %v", body)
		}
		if got := s.verify(body["access_token"].(string)); got.Role != "organizer" {
			t.Fatalf("fresh token carries role %q", got.Role)
		}
		if body["refresh_token"] == "" {
			t.Fatal("no refresh token")
		}
	}
	// A refresh token issued before the change now yields organizer tokens too.
	status, body = s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": pair["refresh_token"]}, nil)
	if status != http.StatusOK || s.verify(body["access_token"].(string)).Role != "organizer" {
		t.Fatalf("refresh after role change: %d %v", status, body)
	}
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	s.register("taken@example.com", goodPassword)
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"bad email", map[string]any{"email": "not-an-email", "name": "A", "password": goodPassword}, 400, "email"},
		{"display name email", map[string]any{"email": "A <a@example.com>", "name": "A", "password": goodPassword}, 400, "email"},
		{"no tld", map[string]any{"email": "a@localhost", "name": "A", "password": goodPassword}, 400, "email"},
		{"short password", map[string]any{"email": "a@example.com", "name": "A", "password": "abc123"}, 400, "password"},
		{"letters only", map[string]any{"email": "a@example.com", "name": "A", "password": "abcdefghijkl"}, 400, "password"},
		{"repetitive", map[string]any{"email": "a@example.com", "name": "A", "password": "aaaaaaaaa1"}, 400, "password"},
		{"common", map[string]any{"email": "a@example.com", "name": "A", "password": "password123"}, 400, "password"},
		{"contains email", map[string]any{"email": "johnny@example.com", "name": "A", "password": "johnny-2026!"}, 400, "password"},
		{"too long password", map[string]any{"email": "a@example.com", "name": "A", "password": string(bytes.Repeat([]byte("ab1"), 50))}, 400, "password"},
		{"empty name", map[string]any{"email": "a@example.com", "name": "  ", "password": goodPassword}, 400, "name"},
		{"wrong type", map[string]any{"email": 42, "name": "A", "password": goodPassword}, 400, ""},
		{"unknown field", map[string]any{"email": "a@example.com", "name": "A", "password": goodPassword, "role": "organizer"}, 400, ""},
		{"taken, other case", map[string]any{"email": "TAKEN@example.com", "name": "A", "password": goodPassword}, 409, ""},
	}
	for _, c := range cases {
		status, body := s.do("POST", "/api/auth/register", c.body, nil)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%v)", c.name, status, c.status, body)
			continue
		}
		if c.field != "" {
			errsList, _ := body["errors"].([]any)
			if len(errsList) == 0 || errsList[0].(map[string]any)["field"] != c.field {
				t.Errorf("%s: errors %v, want field %s", c.name, body["errors"], c.field)
			}
		}
	}
	// Nothing was written by the refused requests.
	if status, _ := s.login("a@example.com", goodPassword); status != http.StatusUnauthorized {
		t.Fatalf("a refused registration created an account: %d", status)
	}
}

func TestConcurrentRegistrationsOfOneEmail(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = s.do("POST", "/api/auth/register",
				map[string]string{"email": "race@example.com", "name": "Racer", "password": goodPassword}, nil)
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, st := range statuses {
		count[st]++
	}
	if count[201] != 1 || count[409] != n-1 {
		t.Fatalf("statuses %v, want one 201 and %d 409", count, n-1)
	}
}

func TestLoginSameAnswerForUnknownEmail(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	s.register("known@example.com", goodPassword)
	st1, wrong := s.login("known@example.com", "wrong-password-1")
	st2, unknown := s.login("unknown@example.com", "wrong-password-1")
	if st1 != 401 || st2 != 401 || wrong["code"] != unknown["code"] || wrong["detail"] != unknown["detail"] {
		t.Fatalf("answers differ: %d %v / %d %v", st1, wrong, st2, unknown)
	}
}

func TestRefreshRotationAndReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	s.register("rot@example.com", goodPassword)
	_, first := s.login("rot@example.com", goodPassword)
	r1 := first["refresh_token"]
	status, second := s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": r1}, nil)
	if status != 200 || second["refresh_token"] == r1 {
		t.Fatalf("rotate: %d %v", status, second)
	}
	r2 := second["refresh_token"]
	// The spent token comes back: refused, and the whole family dies with it.
	if status, body := s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": r1}, nil); status != 401 {
		t.Fatalf("reuse: %d %v", status, body)
	}
	if status, body := s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": r2}, nil); status != 401 {
		t.Fatalf("family member after reuse: %d %v", status, body)
	}
	// Another login is another family, untouched.
	_, other := s.login("rot@example.com", goodPassword)
	if status, _ := s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": other["refresh_token"]}, nil); status != 200 {
		t.Fatalf("unrelated family revoked: %d", status)
	}
	for _, bad := range []any{"", "garbage", "sbr_" + string(bytes.Repeat([]byte("A"), 43)), first["access_token"]} {
		if status, _ := s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": bad}, nil); status != 401 {
			t.Fatalf("refresh with %q: %d", bad, status)
		}
	}
}

func TestConcurrentRefreshOnlyOneWins(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	s.register("dup@example.com", goodPassword)
	_, pair := s.login("dup@example.com", goodPassword)
	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, _ := s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": pair["refresh_token"]}, nil); st == 200 {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d concurrent refreshes with one token succeeded, want 1", ok)
	}
}

func TestLogoutRevokesFamily(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	s.register("out@example.com", goodPassword)
	_, pair := s.login("out@example.com", goodPassword)
	if status, _ := s.do("POST", "/api/auth/logout", map[string]any{"refresh_token": pair["refresh_token"]}, nil); status != 204 {
		t.Fatalf("logout: %d", status)
	}
	if status, _ := s.do("POST", "/api/auth/refresh", map[string]any{"refresh_token": pair["refresh_token"]}, nil); status != 401 {
		t.Fatalf("refresh after logout: %d", status)
	}
}

func TestLoginRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("per account, under a concurrent burst", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, user.Limits{Window: rateWindow, PerIP: 1000, PerAccount: 5})
		s.register("victim@example.com", goodPassword)
		const n = 30
		var wg sync.WaitGroup
		var mu sync.Mutex
		count := map[int]int{}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _ := s.login("victim@example.com", "guess-password-1")
				mu.Lock()
				count[st]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if count[401] != 5 || count[429] != n-5 {
			t.Fatalf("burst answers %v, want exactly 5 checked (401) and the rest 429", count)
		}
		// Locked even with the right password until the window passes.
		if st, body := s.login("victim@example.com", goodPassword); st != 429 || body["code"] != "too_many_attempts" {
			t.Fatalf("right password while locked: %d %v", st, body)
		}
	})
	t.Run("per client address", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, user.Limits{Window: rateWindow, PerIP: 3, PerAccount: 1000})
		for i := range 3 {
			if st, _ := s.login(fmt.Sprintf("u%d@example.com", i), "whatever-pass-1"); st != 401 {
				t.Fatalf("attempt %d: %d", i, st)
			}
		}
		if st, _ := s.login("other@example.com", "whatever-pass-1"); st != 429 {
			t.Fatalf("fourth attempt from one address: %d, want 429", st)
		}
	})
}

func TestJWKSPublishesTheSigningKey(t *testing.T) {
	t.Parallel()
	s := newServer(t, defaultLimits)
	keys := &token.RemoteKeys{URL: s.url + "/internal/jwks", MinRefresh: time.Second}
	pub := s.key.Public().(ed25519.PublicKey)
	got, err := keys.Key(context.Background(), token.KeyID(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("jwks key: %v %v", got, err)
	}
}
