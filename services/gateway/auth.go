package gateway

import (
	"bytes"
	"context"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/token"
)

// TokenVerifier checks an access token.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (token.Verified, error)
}

// bytesVerifier is a TokenVerifier that also takes a token as the request holds it, sparing
// the gateway a copy of every request's token (the token cache: a hit needs only its hash).
type bytesVerifier interface {
	VerifyBytes(ctx context.Context, raw []byte) (token.Verified, error)
}

// authenticate verifies the bearer token, if any: the caller's identity, the zero Identity
// for an anonymous caller of a route that allows one, or the 401 to answer. A present but
// invalid token is always refused, whatever the route.
func (g *Gateway) authenticate(c *call) (identity.Identity, error) {
	// Presence, not content, decides: an empty Authorization header is a malformed one.
	values := c.fc.Request.Header.PeekAll("Authorization")
	if len(values) == 0 {
		if c.route.Auth == Required {
			return identity.Identity{}, unauthorized(c, "missing_token", "this route needs an access token: Authorization: Bearer <token>", false)
		}
		return identity.Identity{}, nil
	}
	if len(values) > 1 {
		return identity.Identity{}, unauthorized(c, "invalid_token", "send one Authorization header", true)
	}
	scheme, raw, ok := bytes.Cut(values[0], []byte(" "))
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) || len(raw) == 0 {
		return identity.Identity{}, unauthorized(c, "invalid_token", "the Authorization header must be: Bearer <token>", true)
	}
	raw = bytes.TrimSpace(raw)
	var verified token.Verified
	var err error
	if bv, ok := g.verifier.(bytesVerifier); ok {
		verified, err = bv.VerifyBytes(c.ctx, raw)
	} else {
		verified, err = g.verifier.Verify(c.ctx, string(raw))
	}
	if err != nil {
		g.log.InfoContext(c.ctx, "token refused", "reason", err.Error())
		return identity.Identity{}, unauthorized(c, "invalid_token", "the access token is invalid or expired", true)
	}
	role := identity.Role(verified.Role)
	if !role.Valid() || verified.UserID == uuid.Nil {
		return identity.Identity{}, unauthorized(c, "invalid_token", "the access token is invalid or expired", true)
	}
	return identity.Identity{UserID: verified.UserID, Role: role}, nil
}

func unauthorized(c *call, code, detail string, invalid bool) error {
	challenge := `Bearer realm="sbor"`
	if invalid {
		challenge += `, error="invalid_token"`
	}
	c.fc.Response.Header.Set("WWW-Authenticate", challenge)
	return errs.New(errs.Unauthenticated, code, detail)
}
