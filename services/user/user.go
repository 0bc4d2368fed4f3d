// Package user is the user service: accounts, passwords, login with access and refresh
// tokens, and the organizer role (flows 1–3 of the design).
//
// Layers: http.go (routes, JSON ↔ business converters) → Core (rules) → Store (SQL).
// Access tokens are Ed25519 JWTs verified only by the gateway; refresh tokens are opaque,
// stored hashed, rotated on every use, and a reused one revokes its whole family.
package user

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/token"
)

// Limits bounds login attempts per client address and per account in a window.
type Limits struct {
	Window     time.Duration
	PerIP      int
	PerAccount int
}

// Core holds the user service's rules.
type Core struct {
	store      *Store
	signer     *token.Signer
	refreshTTL time.Duration
	limits     Limits
	now        func() time.Time
}

// NewCore returns the business layer.
func NewCore(store *Store, signer *token.Signer, refreshTTL time.Duration, limits Limits) *Core {
	return &Core{store: store, signer: signer, refreshTTL: refreshTTL, limits: limits, now: time.Now}
}

// Register creates an account with role user.
func (c *Core) Register(ctx context.Context, nu NewUser) (User, error) {
	nu, err := nu.Validate()
	if err != nil {
		return User{}, err
	}
	hash, err := HashPassword(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	return c.store.Create(ctx, User{ID: uuid.New(), Email: nu.Email, Name: nu.Name, Role: identity.RoleUser, PasswordHash: hash})
}

var errBadCredentials = errs.New(errs.Unauthenticated, "invalid_credentials", "the email or password is wrong")

func tooMany(retryAfter time.Duration) error {
	e := errs.New(errs.TooManyRequests, "too_many_attempts", "too many login attempts; try again later")
	e.RetryAfter = int(retryAfter.Seconds())
	return e
}

// Login checks credentials and issues a token pair. Unknown email and wrong password give the
// same answer after the same work. Attempts are counted before the password is checked, per
// client address and per account, so a burst cannot slip past the limit.
func (c *Core) Login(ctx context.Context, email, password, clientIP string) (User, TokenPair, error) {
	email = NormalizeEmail(email)
	if !plausibleCredentials(email, password) {
		return User{}, TokenPair{}, errBadCredentials
	}
	if clientIP != "" && c.limits.PerIP > 0 {
		n, err := c.store.CountAttempt(ctx, "ip:"+clientIP, c.limits.Window)
		if err != nil {
			return User{}, TokenPair{}, err
		}
		if n > c.limits.PerIP {
			return User{}, TokenPair{}, tooMany(c.limits.Window)
		}
	}
	accountKey := "account:" + email
	if c.limits.PerAccount > 0 {
		n, err := c.store.CountAttempt(ctx, accountKey, c.limits.Window)
		if err != nil {
			return User{}, TokenPair{}, err
		}
		if n > c.limits.PerAccount {
			return User{}, TokenPair{}, tooMany(c.limits.Window)
		}
	}
	u, err := c.store.ByEmail(ctx, email)
	hash := u.PasswordHash
	if errs.Is(err, errs.NotFound) {
		hash = dummyHash()
	} else if err != nil {
		return User{}, TokenPair{}, err
	}
	ok, verr := VerifyPassword(ctx, hash, password)
	if err != nil || verr != nil || !ok {
		return User{}, TokenPair{}, errBadCredentials
	}
	if c.limits.PerAccount > 0 {
		if err := c.store.ResetAttempts(ctx, accountKey); err != nil {
			return User{}, TokenPair{}, err
		}
	}
	pair, err := c.issue(ctx, u, uuid.New())
	return u, pair, err
}

// plausibleCredentials reports whether a (normalised) email and a password could belong to
// an account at all. Login answers anything else at once, before the attempt counters: in
// particular an email PostgreSQL cannot even store as text (a NUL, invalid UTF-8), which
// would otherwise turn into a 500.
func plausibleCredentials(email, password string) bool {
	return email != "" && password != "" && len(email) <= MaxEmailLen && len(password) <= MaxPasswordLen &&
		!strings.ContainsRune(email, 0) && utf8.ValidString(email)
}

var errBadRefresh = errs.New(errs.Unauthenticated, "invalid_refresh_token", "the refresh token is invalid, expired or already used")

// Refresh spends a refresh token and issues a new pair in the same family. The access token
// carries the user's current role.
func (c *Core) Refresh(ctx context.Context, raw string) (User, TokenPair, error) {
	old, ok := hashRefreshToken(raw)
	if !ok {
		return User{}, TokenPair{}, errBadRefresh
	}
	var nextRaw string
	userID, err := c.store.RotateRefreshToken(ctx, old, func(family, user uuid.UUID) refreshToken {
		var t refreshToken
		nextRaw, t = c.newRefreshToken(family, user)
		return t
	})
	switch {
	case errors.Is(err, errRefreshReused), errs.Is(err, errs.NotFound):
		return User{}, TokenPair{}, errBadRefresh
	case err != nil:
		return User{}, TokenPair{}, err
	}
	u, err := c.store.ByID(ctx, userID)
	if err != nil {
		return User{}, TokenPair{}, err
	}
	access, err := c.signer.Sign(u.ID, string(u.Role), c.now())
	if err != nil {
		return User{}, TokenPair{}, err
	}
	return u, TokenPair{AccessToken: access, RefreshToken: nextRaw, ExpiresIn: c.signer.TTL()}, nil
}

// Logout revokes the refresh token's family. An unknown token is not an error: the result
// is the same.
func (c *Core) Logout(ctx context.Context, raw string) error {
	h, ok := hashRefreshToken(raw)
	if !ok {
		return nil
	}
	return c.store.RevokeFamilyOf(ctx, h)
}

// Me returns the caller's account.
func (c *Core) Me(ctx context.Context, id identity.Identity) (User, error) {
	u, err := c.store.ByID(ctx, id.UserID)
	if errs.Is(err, errs.NotFound) {
		return User{}, errs.New(errs.Unauthenticated, "unknown_user", "the token's user no longer exists")
	}
	return u, err
}

// ByEmail finds the account of an email, normalised as at registration: an invalid email is
// Invalid (field "email"), one without an account NotFound (user_not_found).
func (c *Core) ByEmail(ctx context.Context, email string) (User, error) {
	email = NormalizeEmail(email)
	if !validEmail(email) {
		var v errs.Validation
		v.Add("email", "must be an email address")
		return User{}, v.Err()
	}
	return c.store.ByEmail(ctx, email)
}

// BecomeOrganizer gives the caller the organizer role (idempotent) and a fresh token pair
// carrying it.
func (c *Core) BecomeOrganizer(ctx context.Context, id identity.Identity) (User, TokenPair, error) {
	u, err := c.store.SetRole(ctx, id.UserID, identity.RoleOrganizer)
	if errs.Is(err, errs.NotFound) {
		return User{}, TokenPair{}, errs.New(errs.Unauthenticated, "unknown_user", "the token's user no longer exists")
	}
	if err != nil {
		return User{}, TokenPair{}, err
	}
	pair, err := c.issue(ctx, u, uuid.New())
	return u, pair, err
}

// JWKS returns the public keys that verify access tokens.
func (c *Core) JWKS() token.JWKS { return c.signer.JWKS() }

func (c *Core) issue(ctx context.Context, u User, family uuid.UUID) (TokenPair, error) {
	access, err := c.signer.Sign(u.ID, string(u.Role), c.now())
	if err != nil {
		return TokenPair{}, err
	}
	raw, t := c.newRefreshToken(family, u.ID)
	if err := c.store.AddRefreshToken(ctx, t); err != nil {
		return TokenPair{}, err
	}
	return TokenPair{AccessToken: access, RefreshToken: raw, ExpiresIn: c.signer.TTL()}, nil
}

// refreshPrefix makes refresh tokens recognisable (secret scanners, logs) and distinct from
// JWTs, so one can never be mistaken for the other.
const refreshPrefix = "sbr_"

func (c *Core) newRefreshToken(family, user uuid.UUID) (string, refreshToken) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	raw := refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h, _ := hashRefreshToken(raw)
	return raw, refreshToken{Hash: h, FamilyID: family, UserID: user, Expires: c.now().Add(c.refreshTTL)}
}

func hashRefreshToken(raw string) ([]byte, bool) {
	if len(raw) != len(refreshPrefix)+43 || raw[:len(refreshPrefix)] != refreshPrefix {
		return nil, false
	}
	sum := sha256.Sum256([]byte(raw))
	return sum[:], true
}
