package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// TokenVerifier checks an access token.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (token.Verified, error)
}

func unauthorized(w http.ResponseWriter, r *http.Request, code, detail string, invalid bool) {
	challenge := `Bearer realm="sbor"`
	if invalid {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	web.Error(w, r, errs.New(errs.Unauthenticated, code, detail))
}

// authenticate verifies the bearer token, if any, and puts the caller's identity into the
// request context. A present but invalid token is always refused, whatever the route.
func authenticate(v TokenVerifier, auth Auth) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			header := r.Header.Get("Authorization")
			if header == "" {
				if auth == Required {
					unauthorized(w, r, "missing_token", "this route needs an access token: Authorization: Bearer <token>", false)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			scheme, raw, ok := strings.Cut(header, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
				unauthorized(w, r, "invalid_token", "the Authorization header must be: Bearer <token>", true)
				return
			}
			verified, err := v.Verify(r.Context(), strings.TrimSpace(raw))
			if err != nil {
				web.LoggerFrom(r.Context()).Info("token refused", "reason", err.Error())
				unauthorized(w, r, "invalid_token", "the access token is invalid or expired", true)
				return
			}
			role := identity.Role(verified.Role)
			if !role.Valid() || verified.UserID == uuid.Nil {
				unauthorized(w, r, "invalid_token", "the access token is invalid or expired", true)
				return
			}
			ctx := identity.WithIdentity(r.Context(), identity.Identity{UserID: verified.UserID, Role: role})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
