package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/platform/web"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/gateway"
	"github.com/sbor-dev/sbor/services/user"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// platform is a gateway in front of a real user service (real PostgreSQL) and a recording
// upstream standing in for the event service, which shows exactly what a service receives.
type platform struct {
	t        *testing.T
	gateway  string
	key      ed25519.PrivateKey
	received chan http.Header
}

func newPlatform(t *testing.T, mutate func(*gateway.Config)) *platform {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(context.Background(), pool, user.Migrations()...); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	core := user.NewCore(user.NewStore(pool), token.NewSigner(key, token.DefaultIssuer, token.DefaultAudience, 15*time.Minute),
		time.Hour, user.Limits{Window: time.Minute, PerIP: 1000, PerAccount: 1000})
	log := slog.New(slog.DiscardHandler)
	ur := web.NewRouter(log)
	user.Routes(ur, core)
	userSrv := httptest.NewServer(ur)
	t.Cleanup(userSrv.Close)

	p := &platform{t: t, key: key, received: make(chan http.Header, 16)}
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.received <- r.Header.Clone()
		_, _ = io.Copy(io.Discard, r.Body)
		web.Respond(w, http.StatusOK, map[string]string{"path": r.URL.Path})
	}))
	t.Cleanup(recorder.Close)

	cfg := gateway.Config{Upstreams: map[gateway.Upstream]string{
		gateway.UpstreamUser: userSrv.URL, gateway.UpstreamEvent: recorder.URL,
	}, MaxBodyBytes: 1 << 16}
	if mutate != nil {
		mutate(&cfg)
	}
	verifier := &token.Verifier{
		Keys:   &token.RemoteKeys{URL: userSrv.URL + "/internal/jwks", MinRefresh: time.Second},
		Issuer: token.DefaultIssuer, Audience: token.DefaultAudience,
	}
	g, err := gateway.New(log, cfg, verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.gateway = gateway.ServeForTest(t, g)
	return p
}

func (p *platform) request(method, path string, body any, headers map[string]string) (*http.Response, map[string]any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.gateway+path, rd)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		p.t.Fatalf("%s %s: %d without problem+json: %q", method, path, resp.StatusCode, raw)
	}
	return resp, out
}

// signup registers and logs in a user through the gateway and returns the token pair.
func (p *platform) signup(email string) map[string]any {
	p.t.Helper()
	resp, body := p.request("POST", "/api/auth/register", map[string]string{"email": email, "name": "N", "password": "correct-horse-9"}, nil)
	if resp.StatusCode != 201 {
		p.t.Fatalf("register: %d %v", resp.StatusCode, body)
	}
	resp, pair := p.request("POST", "/api/auth/login", map[string]string{"email": email, "password": "correct-horse-9"}, nil)
	if resp.StatusCode != 200 {
		p.t.Fatalf("login: %d %v", resp.StatusCode, pair)
	}
	pair["user_id"] = body["id"]
	return pair
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestFlowsOneToThreeThroughTheGateway(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	pair := p.signup("flow@example.com")
	resp, me := p.request("GET", "/api/users/me", nil, bearer(pair["access_token"].(string)))
	if resp.StatusCode != 200 || me["email"] != "flow@example.com" || me["role"] != "user" {
		t.Fatalf("me: %d %v", resp.StatusCode, me)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Fatal("no X-Request-ID on the answer")
	}
	resp, org := p.request("POST", "/api/users/me/become-organizer", nil, bearer(pair["access_token"].(string)))
	if resp.StatusCode != 200 {
		t.Fatalf("become organizer: %d %v", resp.StatusCode, org)
	}
	resp, me = p.request("GET", "/api/users/me", nil, bearer(org["access_token"].(string)))
	if resp.StatusCode != 200 || me["role"] != "organizer" {
		t.Fatalf("me as organizer: %d %v", resp.StatusCode, me)
	}
	resp, _ = p.request("GET", "/api/users/me", nil, nil)
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("me without token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestSpoofedIdentityHeadersNeverReachAService(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	pair := p.signup("spoof@example.com")
	victim := uuid.NewString()
	spoof := map[string]string{
		"X-User-ID": victim, "X-User-Role": "organizer", "X-User-Anything": "x",
		"X-Request-ID": "client-chosen", "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9",
	}

	// Anonymous with spoofed headers: the service sees no identity at all.
	resp, _ := p.request("GET", "/api/events", nil, spoof)
	if resp.StatusCode != 200 {
		t.Fatalf("anonymous list: %d", resp.StatusCode)
	}
	h := <-p.received
	for name := range h {
		if strings.HasPrefix(name, "X-User-") {
			t.Fatalf("service received client header %s=%q", name, h.Get(name))
		}
	}
	if h.Get("X-Request-Id") == "client-chosen" || h.Get("X-Request-Id") == "" {
		t.Fatalf("request id %q not set by the gateway", h.Get("X-Request-Id"))
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("Forwarded") != "" {
		t.Fatalf("forwarding headers from the client survived: %q %q", h.Get("X-Forwarded-For"), h.Get("Forwarded"))
	}

	// Authenticated with spoofed headers: the service sees the token's identity only.
	withToken := bearer(pair["access_token"].(string))
	for k, v := range spoof {
		withToken[k] = v
	}
	resp, _ = p.request("POST", "/api/events", map[string]string{"title": "x"}, withToken)
	if resp.StatusCode != 200 {
		t.Fatalf("create through recorder: %d", resp.StatusCode)
	}
	h = <-p.received
	if h.Get("X-User-Id") != pair["user_id"] || h.Get("X-User-Role") != "user" || len(h.Values("X-User-Id")) != 1 {
		t.Fatalf("service received identity %v / %v", h.Values("X-User-Id"), h.Values("X-User-Role"))
	}
	if h.Get("X-User-Anything") != "" {
		t.Fatal("unknown X-User-* header passed through")
	}

	// Through to the real user service: /me answers for the token's user, not the spoofed one.
	resp, me := p.request("GET", "/api/users/me", nil, withToken)
	if resp.StatusCode != 200 || me["id"] != pair["user_id"] {
		t.Fatalf("me with spoofed headers: %d %v", resp.StatusCode, me)
	}
}

func (p *platform) sign(method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	p.t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func TestForgedAndInvalidTokensAreRefused(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	pair := p.signup("victim@example.com")
	pub := p.key.Public().(ed25519.PublicKey)
	kid := token.KeyID(pub)
	now := time.Now()
	claims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": token.DefaultIssuer, "aud": []string{token.DefaultAudience}, "sub": pair["user_id"],
			"role": "organizer", "token_use": "access", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		}
		if mut != nil {
			mut(c)
		}
		return c
	}
	// The control: a token we mint with the real key and valid claims is accepted.
	if resp, _ := p.request("GET", "/api/users/me", nil, bearer(p.sign(jwt.SigningMethodEdDSA, p.key, claims(nil), kid))); resp.StatusCode != 200 {
		t.Fatalf("control token refused: %d", resp.StatusCode)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	noneToken := p.sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), kid)
	cases := map[string]string{
		"alg none":              noneToken,
		"HS256 with public key": p.sign(jwt.SigningMethodHS256, []byte(pub), claims(nil), kid),
		"foreign key, our kid":  p.sign(jwt.SigningMethodEdDSA, otherKey, claims(nil), kid),
		"unknown kid":           p.sign(jwt.SigningMethodEdDSA, otherKey, claims(nil), token.KeyID(otherKey.Public().(ed25519.PublicKey))),
		"no kid":                p.sign(jwt.SigningMethodEdDSA, p.key, claims(nil), ""),
		"expired":               p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), kid),
		"no exp":                p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { delete(c, "exp") }), kid),
		"not yet valid":         p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), kid),
		"no nbf":                p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { delete(c, "nbf") }), kid),
		"wrong audience":        p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { c["aud"] = "other-api" }), kid),
		"wrong issuer":          p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { c["iss"] = "evil" }), kid),
		"not an access token":   p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { delete(c, "token_use") }), kid),
		"bad role":              p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { c["role"] = "admin" }), kid),
		"bad subject":           p.sign(jwt.SigningMethodEdDSA, p.key, claims(func(c jwt.MapClaims) { c["sub"] = "admin" }), kid),
		"refresh token":         pair["refresh_token"].(string),
		"garbage":               "a.b.c",
		"tampered payload":      tamper(pair["access_token"].(string)),
	}
	for name, tok := range cases {
		resp, body := p.request("GET", "/api/users/me", nil, bearer(tok))
		if resp.StatusCode != 401 || body["code"] != "invalid_token" {
			t.Errorf("%s: %d %v, want 401 invalid_token", name, resp.StatusCode, body)
		}
		// Refused even on a route that serves anonymous callers: a bad token is never ignored.
		if resp, _ := p.request("GET", "/api/events", nil, bearer(tok)); resp.StatusCode != 401 {
			t.Errorf("%s on an optional-auth route: %d", name, resp.StatusCode)
		}
	}
	for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc"} {
		if resp, _ := p.request("GET", "/api/users/me", nil, map[string]string{"Authorization": h}); resp.StatusCode != 401 {
			t.Errorf("Authorization %q: %d", h, resp.StatusCode)
		}
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "xx"
	return strings.Join(parts, ".")
}

func TestRoutingLimitsAndUnavailableServices(t *testing.T) {
	t.Parallel()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	p := newPlatform(t, func(c *gateway.Config) { c.Upstreams[gateway.UpstreamNotification] = deadURL })
	pair := p.signup("limits@example.com")
	auth := bearer(pair["access_token"].(string))

	for _, path := range []string{"/internal/jwks", "/internal/events/x", "/api/nope", "/"} {
		if resp, body := p.request("GET", path, nil, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d %v, want 404", path, resp.StatusCode, body)
		}
	}
	if resp, _ := p.request("DELETE", "/api/users/me", nil, auth); resp.StatusCode != 405 {
		t.Errorf("DELETE /api/users/me: %d, want 405", resp.StatusCode)
	}
	resp, body := p.request("GET", "/api/tickets", nil, auth) // ticket service not configured
	if resp.StatusCode != 503 || body["code"] != "service_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("unconfigured service: %d %v", resp.StatusCode, body)
	}
	resp, body = p.request("GET", "/api/notifications", nil, auth) // configured but down
	if resp.StatusCode != 503 || body["code"] != "upstream_unavailable" {
		t.Errorf("service down: %d %v", resp.StatusCode, body)
	}
	huge := map[string]string{"title": strings.Repeat("x", 1<<17)}
	if resp, body := p.request("POST", "/api/events", huge, auth); resp.StatusCode != 413 {
		t.Errorf("huge body: %d %v, want 413", resp.StatusCode, body)
	}
}

func TestClientIPHonoursOnlyTrustedProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct{ remote, xff, want string }{
		{"198.51.100.7:1234", "203.0.113.9", "198.51.100.7"},               // untrusted peer: XFF ignored
		{"10.1.2.3:1234", "203.0.113.9", "203.0.113.9"},                    // ingress in front
		{"10.1.2.3:1234", "1.2.3.4, 203.0.113.9, 10.9.9.9", "203.0.113.9"}, // rightmost untrusted hop
		{"10.1.2.3:1234", "", "10.1.2.3"},
		{"10.1.2.3:1234", "garbage", "10.1.2.3"},
	}
	for _, c := range cases {
		var xff []string
		if c.xff != "" {
			xff = []string{c.xff}
		}
		peer := netip.MustParseAddrPort(c.remote).Addr()
		if got := gateway.ClientIP(peer, xff, trusted); got != c.want {
			t.Errorf("remote %s xff %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
