package gateway

import "net/http"

// Upstream names a service behind the gateway.
type Upstream string

const (
	UpstreamUser         Upstream = "user"
	UpstreamEvent        Upstream = "event"
	UpstreamTicket       Upstream = "ticket"
	UpstreamNotification Upstream = "notification"
)

// Auth says what a route needs of the caller at the gateway. Services still check roles and
// ownership; the gateway only decides who the caller is.
type Auth int

const (
	// Public routes take no token (a present token is still verified, and must be valid).
	Public Auth = iota
	// Optional routes serve anonymous callers too, but differently (drafts for their owner).
	Optional
	// Required routes answer 401 without a valid access token.
	Required
)

// Route is one public route. Patterns use chi syntax.
type Route struct {
	Method   string
	Pattern  string
	Upstream Upstream
	Auth     Auth
}

// Routes is the public API of DESIGN.md section 3: the only paths the gateway forwards.
// /internal/... routes are never here.
var Routes = []Route{
	{http.MethodPost, "/api/auth/register", UpstreamUser, Public},
	{http.MethodPost, "/api/auth/login", UpstreamUser, Public},
	{http.MethodPost, "/api/auth/refresh", UpstreamUser, Public},
	{http.MethodPost, "/api/auth/logout", UpstreamUser, Public},
	{http.MethodGet, "/api/users/me", UpstreamUser, Required},
	{http.MethodPost, "/api/users/me/become-organizer", UpstreamUser, Required},

	{http.MethodGet, "/api/events", UpstreamEvent, Optional},
	{http.MethodPost, "/api/events", UpstreamEvent, Required},
	{http.MethodGet, "/api/events/{id}", UpstreamEvent, Optional},
	{http.MethodPut, "/api/events/{id}", UpstreamEvent, Required},
	{http.MethodPost, "/api/events/{id}/publish", UpstreamEvent, Required},
	{http.MethodPost, "/api/events/{id}/cancel", UpstreamEvent, Required},

	{http.MethodGet, "/api/events/{id}/ticket-types", UpstreamTicket, Optional},
	{http.MethodPost, "/api/events/{id}/ticket-types", UpstreamTicket, Required},
	{http.MethodGet, "/api/events/{id}/tickets", UpstreamTicket, Required},
	{http.MethodPost, "/api/events/{id}/tickets", UpstreamTicket, Required},
	{http.MethodGet, "/api/tickets", UpstreamTicket, Required},
	{http.MethodGet, "/api/tickets/{id}/qr", UpstreamTicket, Required},
	{http.MethodPost, "/api/tickets/{id}/validate", UpstreamTicket, Required},
	{http.MethodPost, "/api/tickets/{id}/checkin", UpstreamTicket, Required},
	// Ticket transfer (issue 10).
	{http.MethodPost, "/api/tickets/{id}/transfer", UpstreamTicket, Required},

	// Door staff and live counts (issue 10). DELETE .../staff/{user_id} is the one route with
	// a second path parameter; the first is {id} everywhere.
	{http.MethodGet, "/api/events/{id}/staff", UpstreamTicket, Required},
	{http.MethodPost, "/api/events/{id}/staff", UpstreamTicket, Required},
	{http.MethodDelete, "/api/events/{id}/staff/{user_id}", UpstreamTicket, Required},
	{http.MethodGet, "/api/staff/events", UpstreamTicket, Required},
	{http.MethodGet, "/api/events/{id}/stats", UpstreamTicket, Required},
	// Signed ticket codes (issue 10): the event's public keys and revocation list, for scanners.
	{http.MethodGet, "/api/events/{id}/scanner-keys", UpstreamTicket, Required},
	{http.MethodGet, "/api/events/{id}/revocations", UpstreamTicket, Required},

	{http.MethodGet, "/api/notifications", UpstreamNotification, Required},
	{http.MethodGet, "/api/notifications/unread-count", UpstreamNotification, Required},
	{http.MethodPost, "/api/notifications/{id}/read", UpstreamNotification, Required},
}
