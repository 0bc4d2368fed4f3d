package notification

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// API JSON shapes (DESIGN.md section 3) and their converters from the business types.

type notificationJSON struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	Title     string     `json:"title"`
	Body      string     `json:"body"`
	EventID   string     `json:"event_id"`
	TicketID  *string    `json:"ticket_id"`
	CreatedAt time.Time  `json:"created_at"`
	ReadAt    *time.Time `json:"read_at"`
}

func toNotificationJSON(n Notification) notificationJSON {
	out := notificationJSON{
		ID: n.ID.String(), Type: string(n.Type), Title: n.Title, Body: n.Body,
		EventID: n.EventID.String(), CreatedAt: n.CreatedAt.UTC(),
	}
	if n.TicketID != nil {
		s := n.TicketID.String()
		out.TicketID = &s
	}
	if n.ReadAt != nil {
		t := n.ReadAt.UTC()
		out.ReadAt = &t
	}
	return out
}

type notificationPageJSON struct {
	Items      []notificationJSON `json:"items"`
	NextCursor string             `json:"next_cursor"`
}

func toNotificationPageJSON(p Page) notificationPageJSON {
	out := notificationPageJSON{Items: make([]notificationJSON, len(p.Items)), NextCursor: p.NextCursor}
	for i, n := range p.Items {
		out.Items[i] = toNotificationJSON(n)
	}
	return out
}

type unreadCountJSON struct {
	Unread int `json:"unread"`
}

type handlers struct{ core *Core }

// Routes mounts the notification service's public routes on r.
func Routes(r chi.Router, core *Core) {
	h := handlers{core: core}
	r.Get("/api/notifications", h.list)
	r.Get("/api/notifications/unread-count", h.unreadCount)
	r.Post("/api/notifications/{id}/read", h.markRead)
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	id, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	limit, err := parseLimit(r.URL.Query().Get("limit"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := h.core.List(r.Context(), id.UserID, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toNotificationPageJSON(page))
}

func (h handlers) unreadCount(w http.ResponseWriter, r *http.Request) {
	id, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	n, err := h.core.UnreadCount(r.Context(), id.UserID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, unreadCountJSON{Unread: n})
}

func (h handlers) markRead(w http.ResponseWriter, r *http.Request) {
	id, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	// A malformed id names no notification: 404, like anyone else's.
	notificationID, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		web.Error(w, r, errNotFound)
		return
	}
	n, err := h.core.MarkRead(r.Context(), id.UserID, notificationID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.Respond(w, http.StatusOK, toNotificationJSON(n))
}

// parseLimit reads the limit query parameter; empty means the default (0).
func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, errInvalidLimit
	}
	return n, nil
}
