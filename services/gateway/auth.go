package gateway

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/token"
)

// TokenVerifier checks an access token.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (token.Verified, error)
}

// authenticate verifies the bearer token, if any: the caller's identity, nil for an anonymous
// caller of a route that allows one, or the 401 to answer. A present but invalid token is
// always refused, whatever the route.
func (g *Gateway) authenticate(c *call) (*identity.Identity, error) {
	// Presence, not content, decides: an empty Authorization header is a malformed one.
	values := c.fc.Request.Header.PeekAll("Authorization")
	if len(values) == 0 {
		if c.route.Auth == Required {
			return nil, unauthorized(c, "missing_token", "this route needs an access token: Authorization: Bearer <token>", false)
		}
		return nil, nil
	}
	if len(values) > 1 {
		return nil, unauthorized(c, "invalid_token", "send one Authorization header", true)
	}
	scheme, raw, ok := strings.Cut(string(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, unauthorized(c, "invalid_token", "the Authorization header must be: Bearer <token>", true)
	}
	verified, err := g.verifier.Verify(c.ctx, strings.TrimSpace(raw))
	if err != nil {
		g.log.InfoContext(c.ctx, "token refused", "reason", err.Error())
		return nil, unauthorized(c, "invalid_token", "the access token is invalid or expired", true)
	}
	role := identity.Role(verified.Role)
	if !role.Valid() || verified.UserID == uuid.Nil {
		return nil, unauthorized(c, "invalid_token", "the access token is invalid or expired", true)
	}
	return &identity.Identity{UserID: verified.UserID, Role: role}, nil
}

func unauthorized(c *call, code, detail string, invalid bool) error {
	challenge := `Bearer realm="sbor"`
	if invalid {
		challenge += `, error="invalid_token"`
	}
	c.fc.Response.Header.Set("WWW-Authenticate", challenge)
	return errs.New(errs.Unauthenticated, code, detail)
}
