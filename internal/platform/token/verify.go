package token

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Verified is what a valid access token says.
type Verified struct {
	UserID uuid.UUID
	Role   string
	Expiry time.Time
}

// KeySource returns the public key for a key id.
type KeySource interface {
	Key(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// Verifier checks access tokens: algorithm pinned to EdDSA, signature by a published key,
// issuer, audience, expiry and not-before, and the token_use claim.
type Verifier struct {
	Keys     KeySource
	Issuer   string
	Audience string
	// Leeway tolerates clock skew between the user service and the gateway.
	Leeway time.Duration
	Now    func() time.Time
}

// ErrInvalid is returned for every rejected token; the reason is wrapped for logs only.
var ErrInvalid = errors.New("invalid access token")

// Verify parses and checks raw.
func (v *Verifier) Verify(ctx context.Context, raw string) (Verified, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(v.Issuer), jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(v.Leeway),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		return v.Keys.Key(ctx, kid)
	}, opts...)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if claims.TokenUse != Use {
		return Verified{}, fmt.Errorf("%w: not an access token", ErrInvalid)
	}
	if claims.NotBefore == nil {
		return Verified{}, fmt.Errorf("%w: nbf missing", ErrInvalid)
	}
	id, err := uuid.Parse(claims.Subject)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: bad subject", ErrInvalid)
	}
	return Verified{UserID: id, Role: claims.Role, Expiry: claims.ExpiresAt.Time}, nil
}

// RemoteKeys fetches a JWKS over HTTP and refreshes it when an unknown key id shows up (at
// most once per MinRefresh, so forged kids cannot hammer the user service), which is how key
// rotation reaches the gateway without a restart. A key removed from the set stops verifying
// after the next refresh.
type RemoteKeys struct {
	URL        string
	Client     *http.Client
	MinRefresh time.Duration
	// MaxAge forces a refresh of a set this old, so a deleted key stops working.
	MaxAge time.Duration

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time
}

// Key returns the key with id kid.
func (r *RemoteKeys) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stale := r.MaxAge > 0 && time.Since(r.fetchedAt) > r.MaxAge
	if k, ok := r.keys[kid]; ok && !stale {
		return k, nil
	}
	if r.keys != nil && !stale && time.Since(r.fetchedAt) < r.MinRefresh {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	if err := r.fetch(ctx); err != nil {
		if k, ok := r.keys[kid]; ok {
			return k, nil // keep verifying with the last known set while the user service is down
		}
		return nil, err
	}
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

func (r *RemoteKeys) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return err
	}
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch jwks: status %d", resp.StatusCode)
	}
	var set JWKS
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("decode jwks: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if pub, err := k.Ed25519(); err == nil && k.Kid != "" {
			keys[k.Kid] = pub
		}
	}
	r.keys, r.fetchedAt = keys, time.Now()
	return nil
}

// StaticKeys is a fixed key set, for tests and for gateways configured with a public key file.
type StaticKeys map[string]ed25519.PublicKey

// Key returns the key with id kid.
func (s StaticKeys) Key(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}
