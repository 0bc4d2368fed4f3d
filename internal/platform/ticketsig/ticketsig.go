// Package ticketsig signs and checks ticket codes that a scanner can verify offline (issue
// 10): the ticket id and event id signed with the event's Ed25519 key.
//
// The text of a signed code (URL-safe: it goes in QR codes and in the {code} path segment of
// validate and check-in) is
//
//	S1.<kid>.<b64url(ticket_id 16 bytes || event_id 16 bytes)>.<b64url(signature 64 bytes)>
//
// where base64url is RFC 4648 section 5 without padding, kid is the base64url of the first 8
// bytes of SHA-256(public key) (11 characters), and the signature is Ed25519 (RFC 8032) over
//
//	"sbor-ticket-v1\n" || kid || "\n" || ticket_id (16 bytes) || event_id (16 bytes)
//
// A signed code is always 145 characters. Parse accepts exactly this form and nothing else
// (no padding, no line breaks, no non-canonical trailing bits), so one ticket has exactly one
// signed code text per key. The scanner page's JavaScript implements the same checks and is
// tested against testdata/vectors.json, which TestVectors keeps in step with this code.
package ticketsig

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/token"
)

// Version is the prefix of every signed code, the format's version included.
const Version = "S1"

// Domain separates these signatures from any other use of a key.
const Domain = "sbor-ticket-v1\n"

// Lengths of a signed code's parts, in characters of base64url without padding.
const (
	KIDLen       = 11 // 8 bytes
	PayloadLen   = 43 // 32 bytes: ticket id, event id
	SignatureLen = 86 // 64 bytes
	// CodeLen is the length of a whole signed code: "S1." kid "." payload "." signature.
	CodeLen = len(Version) + 1 + KIDLen + 1 + PayloadLen + 1 + SignatureLen
)

// ErrMalformed is what Parse returns for anything that is not a well-formed signed code.
var ErrMalformed = errors.New("ticketsig: malformed signed code")

var b64 = base64.RawURLEncoding.Strict()

// Code is a parsed signed code. Parsing checks its form only: Verify checks the signature.
type Code struct {
	KID       string
	TicketID  uuid.UUID
	EventID   uuid.UUID
	Signature [ed25519.SignatureSize]byte
}

// KID is the key id of a public key: base64url of the first 8 bytes of its SHA-256.
func KID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return b64.EncodeToString(sum[:8])
}

// Message is the byte string that is signed for a ticket of an event under key kid.
func Message(kid string, ticketID, eventID uuid.UUID) []byte {
	m := make([]byte, 0, len(Domain)+len(kid)+1+32)
	m = append(m, Domain...)
	m = append(m, kid...)
	m = append(m, '\n')
	m = append(m, ticketID[:]...)
	return append(m, eventID[:]...)
}

// Signer signs the tickets of one event with its private key. It is safe for concurrent use.
type Signer struct {
	kid  string
	priv ed25519.PrivateKey
}

// NewSigner returns a signer for priv (a 64-byte ed25519 private key).
func NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{kid: KID(priv.Public().(ed25519.PublicKey)), priv: priv}
}

// KID is the id of the signer's key.
func (s *Signer) KID() string { return s.kid }

// String names the signer by its key id only, so that printing or logging a signer never
// shows its private key.
func (s *Signer) String() string { return "ticketsig.Signer{kid: " + s.kid + "}" }

// GoString is String, for %#v.
func (s *Signer) GoString() string { return s.String() }

// LogValue is String, for log/slog.
func (s *Signer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Public is the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Sign returns the signed code of a ticket of an event.
func (s *Signer) Sign(ticketID, eventID uuid.UUID) string {
	sig := ed25519.Sign(s.priv, Message(s.kid, ticketID, eventID))
	var payload [32]byte
	copy(payload[:16], ticketID[:])
	copy(payload[16:], eventID[:])
	out := make([]byte, 0, CodeLen)
	out = append(out, Version...)
	out = append(out, '.')
	out = append(out, s.kid...)
	out = append(out, '.')
	out = b64.AppendEncode(out, payload[:])
	out = append(out, '.')
	out = b64.AppendEncode(out, sig)
	return string(out)
}

// Sign returns the signed code of a ticket of an event under priv.
func Sign(priv ed25519.PrivateKey, ticketID, eventID uuid.UUID) string {
	return NewSigner(priv).Sign(ticketID, eventID)
}

// IsSigned reports whether s looks like a signed code (it has the version prefix), so a
// caller can tell it from a plain ticket code before parsing it.
func IsSigned(s string) bool { return len(s) >= len(Version)+1 && s[:len(Version)+1] == Version+"." }

// Parse reads a signed code strictly: exactly CodeLen characters, the version, three parts
// of base64url without padding of exactly their lengths, in canonical form. It never panics.
func Parse(s string) (Code, error) {
	if len(s) != CodeLen || !IsSigned(s) {
		return Code{}, ErrMalformed
	}
	rest := s[len(Version)+1:]
	kid, rest := rest[:KIDLen], rest[KIDLen:]
	if rest[0] != '.' {
		return Code{}, ErrMalformed
	}
	payload, rest := rest[1:1+PayloadLen], rest[1+PayloadLen:]
	if rest[0] != '.' {
		return Code{}, ErrMalformed
	}
	sig := rest[1:]
	var c Code
	var kidBytes [8]byte
	var payloadBytes [32]byte
	if !decode(kidBytes[:], kid) || !decode(payloadBytes[:], payload) || !decode(c.Signature[:], sig) {
		return Code{}, ErrMalformed
	}
	c.KID = kid
	copy(c.TicketID[:], payloadBytes[:16])
	copy(c.EventID[:], payloadBytes[16:])
	return c, nil
}

// decode decodes s, which must be base64url without padding of exactly len(dst) bytes in
// canonical form. The alphabet is checked first because encoding/base64 skips '\r' and '\n'.
func decode(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if !isB64URL(s[i]) {
			return false
		}
	}
	if b64.DecodedLen(len(s)) != len(dst) {
		return false
	}
	n, err := b64.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

func isB64URL(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
}

// Verify reports whether c was signed by the key pub: its kid must be pub's and the
// signature must check.
func Verify(pub ed25519.PublicKey, c Code) bool {
	if len(pub) != ed25519.PublicKeySize || c.KID != KID(pub) {
		return false
	}
	return ed25519.Verify(pub, Message(c.KID, c.TicketID, c.EventID), c.Signature[:])
}

// JSONWebKey is a public key as a JSON Web Key (RFC 8037), what GET
// /api/events/{id}/scanner-keys lists: the same shape as the token signing keys' JWKS; only
// the kid differs (KID, not the RFC 7638 thumbprint).
type JSONWebKey = token.JWK

// JWKS is a JSON Web Key Set.
type JWKS = token.JWKS

// JWK returns pub as a JSON Web Key.
func JWK(pub ed25519.PublicKey) JSONWebKey {
	return JSONWebKey{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(pub), Kid: KID(pub), Alg: "EdDSA", Use: "sig"}
}

// ParseJWK returns the public key of a JSON Web Key, checking every field as JWK sets it.
func ParseJWK(k JSONWebKey) (ed25519.PublicKey, error) {
	if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" || len(k.X) != 43 {
		return nil, errors.New("ticketsig: not an Ed25519 signing JWK")
	}
	pub := make([]byte, ed25519.PublicKeySize)
	if !decode(pub, k.X) {
		return nil, errors.New("ticketsig: bad JWK x")
	}
	if KID(pub) != k.Kid {
		return nil, errors.New("ticketsig: JWK kid does not match its key")
	}
	return pub, nil
}
