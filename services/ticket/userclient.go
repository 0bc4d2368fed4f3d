package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// UserRef is an account as the user service's GET /internal/users?email= names it.
type UserRef struct {
	ID    uuid.UUID
	Email string // normalised as at registration
}

// Users is what the ticket service asks of the user service.
type Users interface {
	ByEmail(ctx context.Context, email string) (UserRef, error)
}

// UserTimeout bounds one call to the user service.
const UserTimeout = 2 * time.Second

// UserClient calls the user service over one pooled HTTP client, as EventClient does the
// event service.
type UserClient struct {
	baseURL string
	http    *http.Client
}

// NewUserClient returns a client of the user service at baseURL (for example
// http://user:8080). timeout <= 0 means UserTimeout. An empty baseURL makes every lookup
// answer 503: the service runs without the user service, only its email lookups fail.
func NewUserClient(baseURL string, timeout time.Duration) *UserClient {
	if timeout <= 0 {
		timeout = UserTimeout
	}
	return &UserClient{baseURL: strings.TrimRight(baseURL, "/"), http: newPeerClient(timeout, 64)}
}

// Close releases idle connections.
func (c *UserClient) Close() { c.http.CloseIdleConnections() }

// maxUserBody bounds the lookup's answer (two short fields).
const maxUserBody = 64 << 10

var errUserNotFound = errs.New(errs.Unprocessable, "user_not_found", "no account has this email")

func errUserUnavailable(cause error) error {
	e := errs.New(errs.Unavailable, "user_service_unavailable", "the user service is unavailable; retry shortly")
	e.RetryAfter = 1
	e.Err = cause
	return e
}

// invalidEmail is the field error of an email the user service would not accept.
func invalidEmail() error {
	var v errs.Validation
	v.Add("email", "must be an email address")
	return v.Err()
}

type userRefJSON struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
}

// ByEmail resolves an email to an account. No account is Unprocessable (user_not_found,
// 422: the request is well formed, the email names nobody); an email the user service
// refuses is Invalid on field "email"; an unreachable, slow or failing user service is
// Unavailable (503 with Retry-After).
func (c *UserClient) ByEmail(ctx context.Context, email string) (UserRef, error) {
	if c.baseURL == "" {
		return UserRef{}, errUserUnavailable(errors.New("no user service URL configured (SBOR_USER_URL)"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/internal/users?email="+url.QueryEscape(email), nil)
	if err != nil {
		return UserRef{}, errUserUnavailable(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return UserRef{}, ctx.Err()
		}
		return UserRef{}, errUserUnavailable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserBody))
	if err != nil {
		return UserRef{}, errUserUnavailable(err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return UserRef{}, errUserNotFound
	case http.StatusBadRequest:
		return UserRef{}, invalidEmail()
	default:
		// The email is never put in an error: it is personal data and would reach the logs.
		return UserRef{}, errUserUnavailable(fmt.Errorf("GET /internal/users: %s", resp.Status))
	}
	var u userRefJSON
	if err := json.Unmarshal(body, &u); err != nil {
		return UserRef{}, errUserUnavailable(fmt.Errorf("GET /internal/users: unreadable answer: %w", err))
	}
	if u.ID == uuid.Nil || u.Email == "" {
		return UserRef{}, errUserUnavailable(errors.New("GET /internal/users: incomplete answer"))
	}
	return UserRef{ID: u.ID, Email: u.Email}, nil
}
