package gateway_test

import (
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/net/http/httpguts"

	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/services/gateway"
)

// FuzzAuthorizationHeader sends any Authorization header through the gateway's handler to
// a route that needs a token. The verifier trusts a key whose private half signs nothing, so
// every request must end in a 401 problem with a Bearer challenge: no panic, no 5xx, and
// nothing forwarded (the upstream would answer 200).
func FuzzAuthorizationHeader(f *testing.F) {
	trusted := ed25519.NewKeyFromSeed([]byte("sbor-fuzz-gateway-trusted-seed32"))
	attacker := ed25519.NewKeyFromSeed([]byte("sbor-fuzz-gateway-attacker-seed3"))
	kid := token.KeyID(trusted.Public().(ed25519.PublicKey))
	claims := jwt.MapClaims{"iss": token.DefaultIssuer, "aud": token.DefaultAudience, "sub": uuid.NewString(),
		"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "role": "organizer", "token_use": token.Use}
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	forged.Header["kid"] = kid
	forgedRaw, _ := forged.SignedString(attacker)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer " + forgedRaw, "bearer " + forgedRaw, "Bearer  " + forgedRaw + " ",
		"Bearer " + none, "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer sbr_" + strings.Repeat("x", 43), "Bearer \x00", "Token x"} {
		f.Add(s)
	}

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	f.Cleanup(upstream.Close)
	verifier := &token.Verifier{Keys: token.StaticKeys{kid: trusted.Public().(ed25519.PublicKey)},
		Issuer: token.DefaultIssuer, Audience: token.DefaultAudience, Leeway: 30 * time.Second}
	g, err := gateway.New(slog.New(slog.DiscardHandler), gateway.Config{Upstreams: map[gateway.Upstream]string{
		gateway.UpstreamUser: upstream.URL, gateway.UpstreamEvent: upstream.URL,
	}}, verifier, nil)
	if err != nil {
		f.Fatal(err)
	}
	gw := gateway.ServeForTest(f, g)
	f.Fuzz(func(t *testing.T, authorization string) {
		if !httpguts.ValidHeaderFieldValue(authorization) {
			t.Skip("not a header value a client can send")
		}
		for _, path := range []string{"/api/users/me", "/api/events"} {
			r, _ := http.NewRequest(http.MethodGet, gw+path, nil)
			r.Header["Authorization"] = []string{authorization}
			w, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, w.Body)
			w.Body.Close()
			if path == "/api/events" && authorization == "" {
				continue // an optional-auth route serves anonymous callers
			}
			if w.StatusCode != http.StatusUnauthorized || w.Header.Get("Content-Type") != "application/problem+json" ||
				!strings.HasPrefix(w.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("Authorization %q on %s: %d %q %q", authorization, path, w.StatusCode, w.Header.Get("Content-Type"), w.Header.Get("WWW-Authenticate"))
			}
		}
	})
}
