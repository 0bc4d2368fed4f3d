package user

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// API JSON shapes (DESIGN.md section 3) and their converters from the business types.

type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func toUserJSON(u User) userJSON {
	return userJSON{ID: u.ID.String(), Email: u.Email, Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt.UTC()}
}

type tokenPairJSON struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func toTokenPairJSON(p TokenPair) tokenPairJSON {
	return tokenPairJSON{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, TokenType: "Bearer", ExpiresIn: int(p.ExpiresIn.Seconds())}
}

type registerRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type userWithTokensJSON struct {
	User userJSON `json:"user"`
	tokenPairJSON
}

type handlers struct{ core *Core }

// Routes mounts the user service's public and internal routes on r.
func Routes(r chi.Router, core *Core) {
	h := handlers{core: core}
	r.Post("/api/auth/register", h.register)
	r.Post("/api/auth/login", h.login)
	r.Post("/api/auth/refresh", h.refresh)
	r.Post("/api/auth/logout", h.logout)
	r.Get("/api/users/me", h.me)
	r.Post("/api/users/me/become-organizer", h.becomeOrganizer)
	r.Get("/internal/jwks", h.jwks)
	r.Get("/internal/users", h.lookup)
}

func (h handlers) register(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	u, err := h.core.Register(r.Context(), NewUser(req))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/users/me")
	web.Respond(w, http.StatusCreated, toUserJSON(u))
}

func (h handlers) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	_, pair, err := h.core.Login(r.Context(), req.Email, req.Password, clientIP(r))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toTokenPairJSON(pair))
}

func (h handlers) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	_, pair, err := h.core.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toTokenPairJSON(pair))
}

func (h handlers) logout(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	// A body without a refresh token, or with something that cannot be one, is a client
	// mistake; a well-formed but unknown token is not (the outcome is the same).
	if _, ok := hashRefreshToken(req.RefreshToken); !ok {
		var v errs.Validation
		v.Add("refresh_token", "must be a refresh token this service issued")
		web.Error(w, r, v.Err())
		return
	}
	if err := h.core.Logout(r.Context(), req.RefreshToken); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h handlers) me(w http.ResponseWriter, r *http.Request) {
	id, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	u, err := h.core.Me(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.Respond(w, http.StatusOK, toUserJSON(u))
}

func (h handlers) becomeOrganizer(w http.ResponseWriter, r *http.Request) {
	id, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	u, pair, err := h.core.BecomeOrganizer(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, userWithTokensJSON{User: toUserJSON(u), tokenPairJSON: toTokenPairJSON(pair)})
}

func (h handlers) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "max-age=300")
	web.Respond(w, http.StatusOK, h.core.JWKS())
}

// userRefJSON is what the internal email lookup tells another service of a user.
type userRefJSON struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// lookup is GET /internal/users?email=: the ticket service resolves the email an organizer
// typed (door staff, transfers) to an account. Never routed by the gateway.
func (h handlers) lookup(w http.ResponseWriter, r *http.Request) {
	u, err := h.core.ByEmail(r.Context(), r.URL.Query().Get("email"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, userRefJSON{ID: u.ID.String(), Email: u.Email})
}

// clientIP is the address the gateway put in X-Forwarded-For (it sets exactly one), or the
// peer address when called directly.
func clientIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
			return ip.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
