package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// fuzzKeys returns the verifier's key pair and an attacker's, both fixed so the fuzzer's
// corpus stays meaningful between runs. The verifier's private key signs nothing: no input
// the fuzzer can make carries its signature, so every input must be refused.
func fuzzKeys() (trusted ed25519.PublicKey, attacker ed25519.PrivateKey) {
	trusted = ed25519.NewKeyFromSeed([]byte("sbor-fuzz-trusted-key-seed-32byt")).Public().(ed25519.PublicKey)
	attacker = ed25519.NewKeyFromSeed([]byte("sbor-fuzz-attacker-key-seed-32by"))
	return trusted, attacker
}

func fuzzSeedTokens(trusted ed25519.PublicKey, attacker ed25519.PrivateKey) []string {
	kid := KeyID(trusted)
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": DefaultIssuer, "aud": DefaultAudience, "sub": uuid.NewString(), "iat": now.Unix(),
		"nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "role": "organizer", "token_use": Use,
	}
	signed := func(m jwt.SigningMethod, key any, header map[string]any) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = kid
		for k, v := range header {
			tok.Header[k] = v
		}
		s, _ := tok.SignedString(key)
		return s
	}
	forged := signed(jwt.SigningMethodEdDSA, attacker, nil)
	parts := strings.Split(forged, ".")
	enc := base64.RawURLEncoding.EncodeToString
	return []string{
		forged,
		signed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil),
		signed(jwt.SigningMethodHS256, []byte(trusted), nil),
		signed(jwt.SigningMethodHS256, []byte(enc(trusted)), nil),
		signed(jwt.SigningMethodEdDSA, attacker, map[string]any{"kid": KeyID(attacker.Public().(ed25519.PublicKey))}),
		signed(jwt.SigningMethodEdDSA, attacker, map[string]any{"kid": 7}),
		signed(jwt.SigningMethodEdDSA, attacker, map[string]any{"jwk": PublicJWK(attacker.Public().(ed25519.PublicKey))}),
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		enc([]byte(`{"alg":"none","kid":"`+kid+`"}`)) + "." + parts[1] + ".",
		enc([]byte(`{"alg":"EdDSA","kid":"`+kid+`","crit":["exp"]}`)) + "." + parts[1] + "." + parts[2],
		"", ".", "..", "a.b.c", "eyJ.eyJ.", strings.Repeat("A", 300), "sbr_" + strings.Repeat("x", 43),
	}
}

// FuzzVerify: the gateway's token check never panics and never accepts a token the trusted
// key did not sign, whatever the fuzzer makes of forged, unsigned, HMAC-confused and
// truncated tokens; every refusal is ErrInvalid.
func FuzzVerify(f *testing.F) {
	trusted, attacker := fuzzKeys()
	for _, s := range fuzzSeedTokens(trusted, attacker) {
		f.Add(s)
	}
	v := &Verifier{Keys: StaticKeys{KeyID(trusted): trusted}, Issuer: DefaultIssuer, Audience: DefaultAudience, Leeway: 30 * time.Second}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := v.Verify(context.Background(), raw)
		if err == nil {
			t.Fatalf("accepted a token the trusted key never signed: %q → %+v", raw, got)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("refusal of %q is not ErrInvalid: %v", raw, err)
		}
	})
}

// FuzzJWKS: a key set from the user service (or an impostor) never panics the parser, and
// a key it yields is always a 32-byte Ed25519 key.
func FuzzJWKS(f *testing.F) {
	trusted, _ := fuzzKeys()
	good, _ := json.Marshal(JWKS{Keys: []JWK{PublicJWK(trusted)}})
	for _, s := range []string{string(good), `{"keys":[]}`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","kid":"k"}]}`,
		`{"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"r"}]}`, `{"keys":null}`, `[]`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + strings.Repeat("A", 100) + `"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var set JWKS
		if json.Unmarshal(b, &set) != nil {
			return
		}
		for _, k := range set.Keys {
			pub, err := k.Ed25519()
			if err == nil && len(pub) != ed25519.PublicKeySize {
				t.Fatalf("key %+v gave %d bytes", k, len(pub))
			}
		}
	})
}
