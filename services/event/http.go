package event

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// API JSON shapes (DESIGN.md section 3) and their converters from the business types.

type eventJSON struct {
	ID          string    `json:"id"`
	OrganizerID string    `json:"organizer_id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Venue       string    `json:"venue"`
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
	Status      string    `json:"status"`
}

func toEventJSON(ev Event) eventJSON {
	return eventJSON{
		ID: ev.ID.String(), OrganizerID: ev.OrganizerID.String(), Title: ev.Title, Description: ev.Description,
		Venue: ev.Venue, StartsAt: ev.StartsAt.UTC(), EndsAt: ev.EndsAt.UTC(), Status: string(ev.Status),
	}
}

type eventListJSON struct {
	Items      []eventJSON `json:"items"`
	NextCursor string      `json:"next_cursor"`
}

func toEventListJSON(p Page) eventListJSON {
	out := eventListJSON{Items: make([]eventJSON, len(p.Items))}
	for i, ev := range p.Items {
		out.Items[i] = toEventJSON(ev)
	}
	if p.Next != nil {
		out.NextCursor = p.Next.Encode()
	}
	return out
}

// internalEventJSON is what GET /internal/events/{id} answers; the ticket service relies on
// exactly this shape.
type internalEventJSON struct {
	eventJSON
	Version int64 `json:"version"`
}

func toInternalEventJSON(ev Event) internalEventJSON {
	return internalEventJSON{eventJSON: toEventJSON(ev), Version: ev.Version}
}

type remindJSON struct {
	Sent           bool      `json:"sent"`
	ReminderSentAt time.Time `json:"reminder_sent_at"`
}

func toRemindJSON(r RemindResult) remindJSON {
	return remindJSON{Sent: r.Sent, ReminderSentAt: r.SentAt.UTC()}
}

// eventRequest is the body of create and update. Times are pointers so that a missing one
// is reported as required rather than as year 1.
type eventRequest struct {
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Venue       string     `json:"venue"`
	StartsAt    *time.Time `json:"starts_at"`
	EndsAt      *time.Time `json:"ends_at"`
}

func (r eventRequest) toNewEvent() NewEvent {
	ne := NewEvent{Title: r.Title, Description: r.Description, Venue: r.Venue}
	if r.StartsAt != nil {
		ne.StartsAt = *r.StartsAt
	}
	if r.EndsAt != nil {
		ne.EndsAt = *r.EndsAt
	}
	return ne
}

type handlers struct{ core *Core }

// Routes mounts the event service's public and internal routes on r.
func Routes(r chi.Router, core *Core) {
	h := handlers{core: core}
	r.Post("/api/events", h.create)
	r.Get("/api/events", h.list)
	r.Get("/api/events/{id}", h.get)
	r.Put("/api/events/{id}", h.update)
	r.Post("/api/events/{id}/publish", h.publish)
	r.Post("/api/events/{id}/cancel", h.cancel)

	r.Get("/internal/events/{id}", h.internalGet)
	r.Post("/internal/events/{id}/remind", h.remind)
}

// eventID reads the {id} path parameter; a malformed one names no event.
func eventID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.Nil, errNotFound
	}
	return id, nil
}

func (h handlers) create(w http.ResponseWriter, r *http.Request) {
	caller, err := identity.RequireOrganizer(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var req eventRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	ev, err := h.core.Create(r.Context(), caller, req.toNewEvent())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/events/"+ev.ID.String())
	web.Respond(w, http.StatusCreated, toEventJSON(ev))
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pr, err := ParsePageRequest(q.Get("limit"), q.Get("cursor"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var p Page
	switch q.Get("organizer") {
	case "":
		p, err = h.core.ListPublished(r.Context(), pr)
	case "me":
		caller, ierr := identity.Require(r.Context())
		if ierr != nil {
			web.Error(w, r, ierr)
			return
		}
		w.Header().Set("Cache-Control", "private, no-store")
		p, err = h.core.ListOwn(r.Context(), caller, pr)
	default:
		err = errs.New(errs.Invalid, "invalid_organizer", `organizer must be "me" or absent`)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.Respond(w, http.StatusOK, toEventListJSON(p))
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	id, err := eventID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var viewer *identity.Identity
	if caller, ok := identity.From(r.Context()); ok {
		viewer = &caller
	}
	ev, err := h.core.Get(r.Context(), viewer, id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	if ev.Status == StatusDraft {
		w.Header().Set("Cache-Control", "private, no-store")
	}
	web.Respond(w, http.StatusOK, toEventJSON(ev))
}

func (h handlers) update(w http.ResponseWriter, r *http.Request) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	id, err := eventID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var req eventRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	ev, err := h.core.Update(r.Context(), caller, id, req.toNewEvent())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.Respond(w, http.StatusOK, toEventJSON(ev))
}

func (h handlers) publish(w http.ResponseWriter, r *http.Request) {
	h.transition(w, r, h.core.Publish)
}

func (h handlers) cancel(w http.ResponseWriter, r *http.Request) {
	h.transition(w, r, h.core.Cancel)
}

// transition serves the body-less owner actions (publish, cancel).
func (h handlers) transition(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, caller identity.Identity, id uuid.UUID) (Event, error)) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	id, err := eventID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	ev, err := do(r.Context(), caller, id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.Respond(w, http.StatusOK, toEventJSON(ev))
}

func (h handlers) internalGet(w http.ResponseWriter, r *http.Request) {
	id, err := eventID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	ev, err := h.core.ByID(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toInternalEventJSON(ev))
}

func (h handlers) remind(w http.ResponseWriter, r *http.Request) {
	id, err := eventID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	res, err := h.core.Remind(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.Respond(w, http.StatusOK, toRemindJSON(res))
}
