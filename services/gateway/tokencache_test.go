package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/token"
)

// rotatingKeys is a key set that a test can change while the cache is in use, as a JWKS
// refresh would.
type rotatingKeys struct {
	mu   sync.Mutex
	keys map[string]ed25519.PublicKey
}

func (r *rotatingKeys) Key(_ context.Context, kid string) (ed25519.PublicKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

func (r *rotatingKeys) set(keys ...*token.Signer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = map[string]ed25519.PublicKey{}
	for _, s := range keys {
		for _, k := range s.JWKS().Keys {
			pub, _ := k.Ed25519()
			r.keys[k.Kid] = pub
		}
	}
}

type cacheFixture struct {
	t      *testing.T
	now    time.Time
	keys   *rotatingKeys
	signer *token.Signer
	v      *token.Verifier
	cache  *tokenCache
}

func newCacheFixture(t *testing.T, size int) *cacheFixture {
	t.Helper()
	f := &cacheFixture{t: t, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), keys: &rotatingKeys{}}
	f.signer = f.newSigner()
	f.keys.set(f.signer)
	f.v = &token.Verifier{Keys: f.keys, Issuer: token.DefaultIssuer, Audience: token.DefaultAudience, Now: func() time.Time { return f.now }}
	f.cache = newTokenCache(f.v, size)
	return f
}

func (f *cacheFixture) newSigner() *token.Signer {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	return token.NewSigner(key, token.DefaultIssuer, token.DefaultAudience, 15*time.Minute)
}

func (f *cacheFixture) token(s *token.Signer, user uuid.UUID) string {
	f.t.Helper()
	raw, err := s.Sign(user, "user", f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// mustVerify checks that raw is accepted as want's, as a string (Verify) and then as the
// request holds it (VerifyBytes, the gateway's way).
func (f *cacheFixture) mustVerify(raw string, want uuid.UUID) {
	f.t.Helper()
	for _, verify := range f.verifiers() {
		got, err := verify(raw)
		if err != nil {
			f.t.Fatalf("verify: %v", err)
		}
		if got.UserID != want || got.Role != "user" {
			f.t.Fatalf("verified %+v, want user %s", got, want)
		}
	}
}

func (f *cacheFixture) mustRefuse(raw string) {
	f.t.Helper()
	for _, verify := range f.verifiers() {
		if got, err := verify(raw); err == nil {
			f.t.Fatalf("verified %+v, want a refusal", got)
		}
	}
}

func (f *cacheFixture) verifiers() []func(string) (token.Verified, error) {
	return []func(string) (token.Verified, error){
		func(raw string) (token.Verified, error) { return f.cache.Verify(context.Background(), raw) },
		func(raw string) (token.Verified, error) {
			return f.cache.VerifyBytes(context.Background(), []byte(raw))
		},
	}
}

// breakVerifier makes every real verification fail, so a success can only come from the
// cache.
func (f *cacheFixture) breakVerifier() { f.v.Issuer = "someone-else" }

func TestTokenCacheAnswersRepeatsWithoutVerifying(t *testing.T) {
	f := newCacheFixture(t, 100)
	user := uuid.New()
	raw := f.token(f.signer, user)
	f.mustVerify(raw, user)
	if f.cache.len() != 1 {
		t.Fatalf("cached %d tokens, want 1", f.cache.len())
	}
	f.breakVerifier()
	f.mustVerify(raw, user) // from the cache
	f.mustRefuse(f.token(f.signer, uuid.New()))
}

func TestTokenCacheNeverRemembersARefusal(t *testing.T) {
	f := newCacheFixture(t, 100)
	user := uuid.New()
	raw := f.token(f.signer, user)
	f.breakVerifier()
	f.mustRefuse(raw)
	f.mustRefuse(raw)
	if f.cache.len() != 0 {
		t.Fatalf("a refused token was cached (%d entries)", f.cache.len())
	}
	f.v.Issuer = token.DefaultIssuer
	f.mustVerify(raw, user) // refused before, valid now: verified, not answered from memory

	// A token of a key the set does not hold is refused every time.
	stranger := f.token(f.newSigner(), user)
	f.mustRefuse(stranger)
	f.mustRefuse(stranger)
	if f.cache.len() != 1 {
		t.Fatalf("cached %d tokens, want 1", f.cache.len())
	}
}

func TestTokenCacheEntryEndsAtTheTokensExpiry(t *testing.T) {
	f := newCacheFixture(t, 100)
	f.v.Leeway = time.Minute // the verifier tolerates skew; the cache does not extend a token
	user := uuid.New()
	raw := f.token(f.signer, user)
	f.mustVerify(raw, user)

	f.now = f.now.Add(15*time.Minute - time.Second)
	f.breakVerifier()
	f.mustVerify(raw, user) // a second before exp: still remembered

	f.now = f.now.Add(time.Second) // exactly exp
	f.mustRefuse(raw)              // dropped, and the (broken) verifier refuses it
	if f.cache.len() != 0 {
		t.Fatalf("an expired token is still cached (%d entries)", f.cache.len())
	}
	f.v.Issuer = token.DefaultIssuer
	f.now = f.now.Add(2 * time.Minute) // past the leeway too
	f.mustRefuse(raw)
}

func TestTokenCacheIsClearedWhenTheKeySetChanges(t *testing.T) {
	f := newCacheFixture(t, 100)
	alice, bob := uuid.New(), uuid.New()
	rawA := f.token(f.signer, alice)
	f.mustVerify(rawA, alice)

	// A key added beside the old one changes nothing for tokens of the old key.
	next := f.newSigner()
	f.keys.set(f.signer, next)
	rawB := f.token(next, bob)
	f.mustVerify(rawB, bob)
	f.mustVerify(rawA, alice)
	if f.cache.len() != 2 {
		t.Fatalf("cached %d tokens, want 2", f.cache.len())
	}

	// The old key is withdrawn: its token stops working at once, though it has not
	// expired, and the cache starts over.
	f.keys.set(next)
	f.mustRefuse(rawA)
	if f.cache.len() != 0 {
		t.Fatalf("the cache kept %d tokens across a key withdrawal", f.cache.len())
	}
	f.mustVerify(rawB, bob)

	// A different key under the same key id (a forged or replaced set) clears it too.
	impostor, _ := f.newSigner().JWKS().Keys[0].Ed25519()
	f.keys.mu.Lock()
	for kid := range f.keys.keys {
		f.keys.keys[kid] = impostor
	}
	f.keys.mu.Unlock()
	f.mustRefuse(rawB)
	if f.cache.len() != 0 {
		t.Fatalf("the cache kept %d tokens after a key changed", f.cache.len())
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	f := newCacheFixture(t, 3)
	users := make([]uuid.UUID, 5)
	raws := make([]string, 5)
	for i := range users {
		users[i] = uuid.New()
		raws[i] = f.token(f.signer, users[i])
	}
	for i := range 3 {
		f.mustVerify(raws[i], users[i])
	}
	f.mustVerify(raws[0], users[0]) // 0 is now the most recently used; 1 the least
	f.mustVerify(raws[3], users[3]) // evicts 1
	f.mustVerify(raws[4], users[4]) // evicts 2
	if f.cache.len() != 3 {
		t.Fatalf("cached %d tokens, want the bound, 3", f.cache.len())
	}
	f.breakVerifier()
	for _, i := range []int{0, 3, 4} {
		f.mustVerify(raws[i], users[i])
	}
	for _, i := range []int{1, 2} {
		f.mustRefuse(raws[i])
	}
}

func TestTokenCacheOffWhenSizeIsZero(t *testing.T) {
	f := newCacheFixture(t, 0)
	user := uuid.New()
	raw := f.token(f.signer, user)
	f.mustVerify(raw, user)
	if f.cache.len() != 0 {
		t.Fatalf("cached %d tokens with size 0", f.cache.len())
	}
}

func TestTokenCacheConcurrentUse(t *testing.T) {
	f := newCacheFixture(t, 8)
	raws := make([]string, 16)
	users := make([]uuid.UUID, 16)
	for i := range raws {
		users[i] = uuid.New()
		raws[i] = f.token(f.signer, users[i])
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := (g + i) % len(raws)
				v, err := f.cache.Verify(context.Background(), raws[n])
				if err != nil || v.UserID != users[n] {
					t.Errorf("token %d: %+v, %v", n, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := f.cache.len(); n > 8 {
		t.Fatalf("cached %d tokens, over the bound 8", n)
	}
}
