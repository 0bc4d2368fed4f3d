package security

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/test/platform"
)

// forger makes tokens with the platform's real signing key, so each attack differs from a
// valid token in exactly one way.
type forger struct {
	key ed25519.PrivateKey
	kid string
}

func newForger(t *testing.T, p *platform.Platform) forger {
	t.Helper()
	b, err := os.ReadFile(p.Env["SBOR_JWT_PRIVATE_KEY_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	key, err := token.ParseKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return forger{key: key, kid: token.KeyID(key.Public().(ed25519.PublicKey))}
}

// claims are the claims of a valid access token of userID.
func validClaims(userID string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": token.DefaultIssuer, "aud": []string{token.DefaultAudience}, "sub": userID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": uuid.NewString(), "role": "user", "token_use": token.Use,
	}
}

func (f forger) sign(t *testing.T, claims jwt.MapClaims, header map[string]any, key ed25519.PrivateKey) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = f.kid
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	if key == nil {
		key = f.key
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs256(t *testing.T, claims jwt.MapClaims, kid string, secret []byte) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testTokenAttacks presents forged, stale and misused tokens. Every one must be refused
// with 401 and an invalid_token challenge, on a route that needs a token and on one that
// merely accepts one; a token made the valid way by the same forger is accepted, which
// proves the attacks differ from it only in what they attack.
func testTokenAttacks(t *testing.T, p *platform.Platform) {
	victim := signUp(t, p, "Tess")
	f := newForger(t, p)
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(victim.userID)
		change(c)
		return c
	}
	pub := f.key.Public().(ed25519.PublicKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

	control := f.sign(t, validClaims(victim.userID), nil, nil)
	if r := (&caller{p: p, token: control}).send("GET", "/api/users/me", nil); r.Status != 200 {
		t.Fatalf("a correctly forged token is refused (%d %s): the attacks below would prove nothing", r.Status, r.Body)
	}

	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(victim.userID)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	validParts := strings.Split(control, ".")
	organizerPayload, _ := base64.RawURLEncoding.DecodeString(validParts[1])
	tampered := strings.Replace(string(organizerPayload), `"role":"user"`, `"role":"organizer"`, 1)
	attacks := map[string]string{
		"alg none":                        noneTok,
		"alg none, kept signature":        strings.Replace(control, validParts[0], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+f.kid+`","typ":"JWT"}`)), 1),
		"HS256 with the raw public key":   hs256(t, validClaims(victim.userID), f.kid, pub),
		"HS256 with the JWK x":            hs256(t, validClaims(victim.userID), f.kid, []byte(base64.RawURLEncoding.EncodeToString(pub))),
		"HS256 with the public key PEM":   hs256(t, validClaims(victim.userID), f.kid, pubPEM),
		"expired":                         f.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }), nil, nil),
		"not yet valid":                   f.sign(t, claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() }), nil, nil),
		"issued in the future":            f.sign(t, claims(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() }), nil, nil),
		"no exp":                          f.sign(t, claims(func(c jwt.MapClaims) { delete(c, "exp") }), nil, nil),
		"no nbf":                          f.sign(t, claims(func(c jwt.MapClaims) { delete(c, "nbf") }), nil, nil),
		"wrong issuer":                    f.sign(t, claims(func(c jwt.MapClaims) { c["iss"] = "evil" }), nil, nil),
		"no issuer":                       f.sign(t, claims(func(c jwt.MapClaims) { delete(c, "iss") }), nil, nil),
		"wrong audience":                  f.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = []string{"another-api"} }), nil, nil),
		"no audience":                     f.sign(t, claims(func(c jwt.MapClaims) { delete(c, "aud") }), nil, nil),
		"token_use refresh":               f.sign(t, claims(func(c jwt.MapClaims) { c["token_use"] = "refresh" }), nil, nil),
		"no token_use":                    f.sign(t, claims(func(c jwt.MapClaims) { delete(c, "token_use") }), nil, nil),
		"role admin":                      f.sign(t, claims(func(c jwt.MapClaims) { c["role"] = "admin" }), nil, nil),
		"no role":                         f.sign(t, claims(func(c jwt.MapClaims) { delete(c, "role") }), nil, nil),
		"subject not a uuid":              f.sign(t, claims(func(c jwt.MapClaims) { c["sub"] = "admin" }), nil, nil),
		"nil subject":                     f.sign(t, claims(func(c jwt.MapClaims) { c["sub"] = uuid.Nil.String() }), nil, nil),
		"signed by another key, real kid": f.sign(t, validClaims(victim.userID), nil, otherKey),
		"signed by another key, its kid":  f.sign(t, validClaims(victim.userID), map[string]any{"kid": token.KeyID(otherKey.Public().(ed25519.PublicKey))}, otherKey),
		"unknown kid":                     f.sign(t, validClaims(victim.userID), map[string]any{"kid": "no-such-key"}, nil),
		"no kid":                          f.sign(t, validClaims(victim.userID), map[string]any{"kid": nil}, nil),
		"kid of another type":             f.sign(t, validClaims(victim.userID), map[string]any{"kid": 42}, nil),
		"embedded jwk":                    f.sign(t, validClaims(victim.userID), map[string]any{"kid": "x", "jwk": token.PublicJWK(otherKey.Public().(ed25519.PublicKey))}, otherKey),
		"payload changed to organizer":    validParts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tampered)) + "." + validParts[2],
		"signature stripped":              validParts[0] + "." + validParts[1] + ".",
		"refresh token as access token":   victim.refresh,
		"garbage":                         "not.a.jwt",
		"empty segments":                  "..",
		"20 KB":                           strings.Repeat("A", 20<<10),
	}
	refused := 0
	for name, tok := range attacks {
		for _, path := range []string{"/api/users/me", "/api/events"} {
			r := (&caller{p: p, name: name, token: tok}).send("GET", path, nil)
			if r.Err != nil {
				t.Fatalf("%s: %v", name, r.Err)
			}
			checkProblem(t, name, r)
			if r.Status != 401 {
				t.Errorf("token attack %q on %s: %d, want 401: %.200s", name, path, r.Status, r.Body)
				continue
			}
			if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
				t.Errorf("token attack %q: challenge %q", name, ch)
			}
			refused++
		}
	}
	for _, header := range []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "Bearer", "Bearer ", "bearer" + control, "Token " + control} {
		r := anonymous(p).send("GET", "/api/users/me", nil, "Authorization", header)
		checkProblem(t, header, r)
		if r.Status != 401 {
			t.Errorf("Authorization %q: %d, want 401", header, r.Status)
		}
		refused++
	}
	t.Logf("token attacks: %d of %d requests refused with 401", refused, 2*len(attacks)+5)
}

// TestDeletedSigningKey restarts the user service with a new signing key, as a key
// rotation that drops the old key does. Tokens of the old key id must stop working once the
// gateway has refreshed its key set, which it does (at most every 10 s) when a token with the
// new, unknown key id arrives.
func TestDeletedSigningKey(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, nil)
	u := signUp(t, p, "Rita")
	old := u.token
	u.must(t, 200, "GET", "/api/users/me", nil)
	oldKid := newForger(t, p).kid

	newKey, err := token.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := p.Env["SBOR_JWT_PRIVATE_KEY_FILE"]
	if err := os.WriteFile(keyFile, newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	registerKeyFile(t, keyFile)
	p.Kill("user")
	p.Restart("user")
	rotated := time.Now()

	u.login(t)
	if newKid := newForger(t, p).kid; newKid == oldKid {
		t.Fatal("the new key has the old key id")
	}
	platform.Eventually(t, 30*time.Second, "a token of the new key accepted", func() bool {
		return u.send("GET", "/api/users/me", nil).Status == 200
	})
	t.Logf("the gateway accepted the new key %s after the rotation", time.Since(rotated).Round(time.Millisecond))
	stale := &caller{p: p, name: "old token", token: old}
	r := stale.send("GET", "/api/users/me", nil)
	checkProblem(t, "old token", r)
	if r.Status != 401 {
		t.Fatalf("a token of the deleted key id is still accepted after the gateway refreshed its keys: %d", r.Status)
	}
	if r := stale.send("GET", "/api/events", nil); r.Status != 401 {
		t.Fatalf("a token of the deleted key id on an optional-auth route: %d", r.Status)
	}
	// Refresh tokens live in the user service's database and survive the rotation.
	anonymous(p).must(t, 200, "POST", "/api/auth/refresh", map[string]any{"refresh_token": u.refresh})
}
