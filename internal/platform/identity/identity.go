// Package identity is the contract between the gateway and the services.
//
// Only the gateway verifies JWTs. It deletes every identity header a client sent and sets its
// own; services trust these headers (NetworkPolicies let only the gateway reach them) and
// never parse a token.
package identity

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// Headers set by the gateway. Any header starting with HeaderPrefix is stripped from client
// requests.
const (
	HeaderPrefix    = "X-User-"
	HeaderUserID    = "X-User-ID"
	HeaderUserRole  = "X-User-Role"
	HeaderRequestID = "X-Request-ID"
)

// Role is a user's role.
type Role string

const (
	RoleUser      Role = "user"
	RoleOrganizer Role = "organizer"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleUser || r == RoleOrganizer }

// Identity is the authenticated caller.
type Identity struct {
	UserID uuid.UUID
	Role   Role
}

// IsOrganizer reports whether the caller may organize events.
func (id Identity) IsOrganizer() bool { return id.Role == RoleOrganizer }

type ctxKey struct{}

// FromHeaders reads the identity the gateway set; ok is false for an anonymous request.
// Malformed headers count as anonymous: only the gateway sets them.
func FromHeaders(h http.Header) (Identity, bool) {
	raw := h.Get(HeaderUserID)
	if raw == "" {
		return Identity{}, false
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return Identity{}, false
	}
	role := Role(h.Get(HeaderUserRole))
	if !role.Valid() {
		return Identity{}, false
	}
	return Identity{UserID: id, Role: role}, true
}

// SetHeaders writes id onto an outgoing request's headers.
func SetHeaders(h http.Header, id Identity) {
	h.Set(HeaderUserID, id.UserID.String())
	h.Set(HeaderUserRole, string(id.Role))
}

// StripHeaders deletes every identity header, whatever its case.
func StripHeaders(h http.Header) {
	for name := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), HeaderPrefix) {
			delete(h, name)
		}
	}
}

// Middleware puts the gateway-set identity, if any, into the request context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := FromHeaders(r.Header); ok {
			r = r.WithContext(WithIdentity(r.Context(), id))
		}
		next.ServeHTTP(w, r)
	})
}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the caller's identity, if authenticated.
func From(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Require returns the caller's identity or an Unauthenticated error.
func Require(ctx context.Context) (Identity, error) {
	id, ok := From(ctx)
	if !ok {
		return Identity{}, errs.New(errs.Unauthenticated, "unauthenticated", "a valid access token is required")
	}
	return id, nil
}

// RequireOrganizer returns the caller's identity if they are an organizer.
func RequireOrganizer(ctx context.Context) (Identity, error) {
	id, err := Require(ctx)
	if err != nil {
		return id, err
	}
	if !id.IsOrganizer() {
		return id, errs.New(errs.Forbidden, "organizer_required", "only organizers may do this; POST /api/users/me/become-organizer first")
	}
	return id, nil
}
