package gateway

import (
	"container/list"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/sbor-dev/sbor/internal/platform/token"
)

// DefaultTokenCacheSize is how many verified access tokens the gateway remembers when
// Config.TokenCacheSize is 0. An entry costs about 200 bytes.
const DefaultTokenCacheSize = 10_000

// tokenCache remembers the access tokens the verifier accepted, so a client that sends the
// same token on every request pays for one signature check (an Ed25519 verification and a
// JSON parse, most of the gateway's own CPU per request) instead of one per request.
//
// What it never does:
//   - remember a refusal: a token that failed verification is verified again next time;
//   - outlive the token: an entry is dropped at the token's expiry (without the verifier's
//     clock-skew leeway, so a cached token never lives longer than an uncached one);
//   - outlive the key that signed it: every hit asks the key source for the token's key id,
//     exactly as a verification would (so a stale key set is still refreshed on schedule),
//     and if the key is gone or is another key, the whole cache is cleared and the token
//     verified afresh;
//   - grow without bound: at most max entries, the least recently used dropped first.
//
// Entries are keyed by the SHA-256 of the token, so the cache holds no usable credential
// and no two tokens can share an entry.
type tokenCache struct {
	verifier *token.Verifier
	max      int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element
	order   list.List // of *tokenEntry, most recently used first
}

type tokenEntry struct {
	hash     [sha256.Size]byte
	verified token.Verified
	kid      string
	key      ed25519.PublicKey
}

func newTokenCache(v *token.Verifier, max int) *tokenCache {
	return &tokenCache{verifier: v, max: max, entries: make(map[[sha256.Size]byte]*list.Element)}
}

func (c *tokenCache) now() time.Time {
	if c.verifier.Now != nil {
		return c.verifier.Now()
	}
	return time.Now()
}

// Verify returns the remembered verification of raw, or verifies it and remembers a success.
func (c *tokenCache) Verify(ctx context.Context, raw string) (token.Verified, error) {
	return c.VerifyBytes(ctx, []byte(raw))
}

// VerifyBytes is Verify for the token as the request holds it: a hit copies nothing.
func (c *tokenCache) VerifyBytes(ctx context.Context, raw []byte) (token.Verified, error) {
	hash := sha256.Sum256(raw)
	if v, ok := c.lookup(ctx, hash); ok {
		return v, nil
	}
	tok := string(raw) // a miss costs a signature check; one copy is nothing beside it
	v, err := c.verifier.Verify(ctx, tok)
	if err != nil {
		return v, err
	}
	kid := keyID(tok)
	if kid == "" {
		return v, nil // verified, yet no kid to check on later hits: not remembered
	}
	key, err := c.verifier.Keys.Key(ctx, kid)
	if err != nil {
		return v, nil
	}
	c.store(&tokenEntry{hash: hash, verified: v, kid: kid, key: key})
	return v, nil
}

// lookup returns a live entry for hash, dropping it if it expired and clearing the cache
// if its signing key is no longer the one the key source has for its key id.
func (c *tokenCache) lookup(ctx context.Context, hash [sha256.Size]byte) (token.Verified, bool) {
	c.mu.Lock()
	el, ok := c.entries[hash]
	if !ok {
		c.mu.Unlock()
		return token.Verified{}, false
	}
	e := el.Value.(*tokenEntry)
	if !c.now().Before(e.verified.Expiry) {
		c.removeLocked(el)
		c.mu.Unlock()
		return token.Verified{}, false
	}
	c.order.MoveToFront(el)
	c.mu.Unlock()

	// Outside the lock: the key source may fetch the key set.
	key, err := c.verifier.Keys.Key(ctx, e.kid)
	if err != nil || !key.Equal(e.key) {
		c.clear()
		return token.Verified{}, false
	}
	return e.verified, true
}

func (c *tokenCache) store(e *tokenEntry) {
	if c.max <= 0 || !c.now().Before(e.verified.Expiry) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.hash]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	for len(c.entries) >= c.max {
		c.removeLocked(c.order.Back())
	}
	c.entries[e.hash] = c.order.PushFront(e)
}

func (c *tokenCache) removeLocked(el *list.Element) {
	c.order.Remove(el)
	delete(c.entries, el.Value.(*tokenEntry).hash)
}

// clear forgets every token: the key set changed.
func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.order.Init()
}

// len is how many tokens are remembered.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// keyID reads the kid of a JWT's header, or "" if it has none.
func keyID(raw string) string {
	header, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Kid
}
