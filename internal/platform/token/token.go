// Package token defines Sbor's access tokens: EdDSA (Ed25519) JWTs signed by the user service
// and verified only by the gateway, whose public keys travel as a JWKS.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Defaults for the registered claims; both sides read them from configuration.
const (
	DefaultIssuer   = "sbor-user"
	DefaultAudience = "sbor-api"
	// Use is the value of the token_use claim of an access token.
	Use = "access"
)

// Claims are the claims of an access token.
type Claims struct {
	jwt.RegisteredClaims
	Role     string `json:"role"`
	TokenUse string `json:"token_use"`
}

// Signer signs access tokens with one Ed25519 key.
type Signer struct {
	key      ed25519.PrivateKey
	kid      string
	issuer   string
	audience string
	ttl      time.Duration
}

// NewSigner returns a signer for key.
func NewSigner(key ed25519.PrivateKey, issuer, audience string, ttl time.Duration) *Signer {
	return &Signer{key: key, kid: KeyID(key.Public().(ed25519.PublicKey)), issuer: issuer, audience: audience, ttl: ttl}
}

// TTL is how long an access token lives.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Sign issues an access token for a user with a role.
func (s *Signer) Sign(userID uuid.UUID, role string, now time.Time) (string, error) {
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.issuer, Subject: userID.String(), Audience: jwt.ClaimStrings{s.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)), ID: uuid.NewString(),
		},
		Role: role, TokenUse: Use,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// JWKS returns the public key set that verifies this signer's tokens.
func (s *Signer) JWKS() JWKS {
	return JWKS{Keys: []JWK{PublicJWK(s.key.Public().(ed25519.PublicKey))}}
}

// JWK is an OKP public key (RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK describes an Ed25519 public key.
func PublicJWK(pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: KeyID(pub), Alg: "EdDSA", Use: "sig"}
}

// Ed25519 returns the key a JWK describes.
func (k JWK) Ed25519() (ed25519.PublicKey, error) {
	if k.Kty != "OKP" || k.Crv != "Ed25519" {
		return nil, fmt.Errorf("jwk %s: not an Ed25519 key", k.Kid)
	}
	b, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("jwk %s: bad x", k.Kid)
	}
	return ed25519.PublicKey(b), nil
}

// KeyID is the RFC 7638 thumbprint of an Ed25519 public key.
func KeyID(pub ed25519.PublicKey) string {
	canonical, _ := json.Marshal(struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
	}{"Ed25519", "OKP", base64.RawURLEncoding.EncodeToString(pub)})
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// GenerateKeyPEM returns a new Ed25519 private key as PKCS #8 PEM.
func GenerateKeyPEM() ([]byte, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM parses a PKCS #8 PEM Ed25519 private key.
func ParseKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block in signing key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("signing key is not Ed25519")
	}
	return ed, nil
}

// LoadKeyFile reads a PEM key file; an empty path yields a fresh in-memory key (development
// only: tokens then do not survive a restart).
func LoadKeyFile(path string) (key ed25519.PrivateKey, generated bool, err error) {
	if path == "" {
		_, key, err = ed25519.GenerateKey(rand.Reader)
		return key, true, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("read signing key: %w", err)
	}
	key, err = ParseKeyPEM(b)
	return key, false, err
}
