package ticket

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// API JSON shapes (DESIGN.md section 3) and their converters from the business types.

type ticketTypeJSON struct {
	ID         string    `json:"id"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	PriceCents int64     `json:"price_cents"`
	Currency   string    `json:"currency"`
	Quantity   int       `json:"quantity"`
	Sold       int       `json:"sold"`
	Available  int       `json:"available"`
	SalesStart time.Time `json:"sales_start"`
	SalesEnd   time.Time `json:"sales_end"`
	MaxPerUser *int      `json:"max_per_user"`
}

func toTicketTypeJSON(tt TicketType) ticketTypeJSON {
	return ticketTypeJSON{
		ID: tt.ID.String(), EventID: tt.EventID.String(), Type: string(tt.Kind), PriceCents: tt.PriceCents,
		Currency: tt.Currency, Quantity: tt.Quantity, Sold: tt.Sold, Available: tt.Available(),
		SalesStart: tt.SalesStart.UTC(), SalesEnd: tt.SalesEnd.UTC(), MaxPerUser: tt.MaxPerUser,
	}
}

type ticketTypeListJSON struct {
	Items      []ticketTypeJSON `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

type newTicketTypeRequest struct {
	Type       *string    `json:"type"`
	PriceCents *int64     `json:"price_cents"`
	Currency   *string    `json:"currency"`
	Quantity   *int       `json:"quantity"`
	SalesStart *time.Time `json:"sales_start"`
	SalesEnd   *time.Time `json:"sales_end"`
	MaxPerUser *int       `json:"max_per_user"`
}

func toNewTicketType(r newTicketTypeRequest) NewTicketType {
	return NewTicketType{Kind: r.Type, PriceCents: r.PriceCents, Currency: r.Currency, Quantity: r.Quantity,
		SalesStart: r.SalesStart, SalesEnd: r.SalesEnd, MaxPerUser: r.MaxPerUser}
}

type ticketJSON struct {
	ID           string     `json:"id"`
	Code         string     `json:"code"`
	SignedCode   string     `json:"signed_code"`
	Status       string     `json:"status"`
	EventID      string     `json:"event_id"`
	TicketTypeID string     `json:"ticket_type_id"`
	UserID       string     `json:"user_id"`
	PurchasedAt  time.Time  `json:"purchased_at"`
	CheckedInAt  *time.Time `json:"checked_in_at"`
}

func toTicketJSON(t Ticket) ticketJSON {
	return ticketJSON{
		ID: t.ID.String(), Code: t.Code, SignedCode: t.SignedCode, Status: string(t.Status), EventID: t.EventID.String(),
		TicketTypeID: t.TicketTypeID.String(), UserID: t.UserID.String(), PurchasedAt: t.PurchasedAt.UTC(),
		CheckedInAt: utcPtr(t.CheckedInAt),
	}
}

type ticketPageJSON struct {
	Items      []ticketJSON `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

func toTicketPageJSON(p TicketPage) ticketPageJSON {
	out := ticketPageJSON{Items: make([]ticketJSON, len(p.Items)), NextCursor: p.Next}
	for i, t := range p.Items {
		out.Items[i] = toTicketJSON(t)
	}
	return out
}

type holderJSON struct {
	TicketID string `json:"ticket_id"`
	UserID   string `json:"user_id"`
	Status   string `json:"status"`
}

type holderPageJSON struct {
	Items      []holderJSON `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

func toHolderPageJSON(p TicketPage) holderPageJSON {
	out := holderPageJSON{Items: make([]holderJSON, len(p.Items)), NextCursor: p.Next}
	for i, t := range p.Items {
		out.Items[i] = holderJSON{TicketID: t.ID.String(), UserID: t.UserID.String(), Status: string(t.Status)}
	}
	return out
}

type purchaseRequest struct {
	TicketTypeID *string `json:"ticket_type_id"`
}

type validationJSON struct {
	Valid  bool   `json:"valid"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

func toValidationJSON(v Validation) validationJSON {
	return validationJSON{Valid: v.Valid, Status: string(v.Status), Reason: v.Reason}
}

// Headers of the Idempotency-Key protocol.
const (
	HeaderIdempotencyKey      = "Idempotency-Key"
	HeaderIdempotencyReplayed = "Idempotency-Replayed"
)

type handlers struct{ core *Core }

// Routes mounts the ticket service's public and internal routes on r. Path parameters are
// all {id}, as in the gateway's table; on validate and checkin it is the ticket's code.
func Routes(r chi.Router, core *Core) {
	h := handlers{core: core}
	r.Post("/api/events/{id}/ticket-types", h.createTicketType)
	r.Get("/api/events/{id}/ticket-types", h.ticketTypes)
	r.Post("/api/events/{id}/tickets", h.purchase)
	r.Get("/api/events/{id}/tickets", h.eventTickets)
	r.Get("/api/tickets", h.myTickets)
	r.Get("/api/tickets/{id}/qr", h.qr)
	r.Post("/api/tickets/{id}/validate", h.validate)
	r.Post("/api/tickets/{id}/checkin", h.checkIn)
	r.Get("/internal/events/{id}/tickets", h.holders)
	SigningRoutes(r, core)
}

// eventIDParam parses the {id} of an event route; a malformed id names no event.
func eventIDParam(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.Nil, errEventNotFound
	}
	return id, nil
}

// callerAndEvent is the start of every event-scoped route: who asks (401 without an
// identity) and about which event (404 for an id that cannot be one).
func callerAndEvent(r *http.Request) (identity.Identity, uuid.UUID, error) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		return identity.Identity{}, uuid.Nil, err
	}
	eventID, err := eventIDParam(r)
	return caller, eventID, err
}

// callerAndTicket is the start of every ticket-scoped route: who asks (401 without an
// identity) and about which ticket (404 for an id that cannot be one).
func callerAndTicket(r *http.Request) (identity.Identity, uuid.UUID, error) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		return identity.Identity{}, uuid.Nil, err
	}
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return identity.Identity{}, uuid.Nil, errTicketNotFound
	}
	return caller, id, nil
}

func (h handlers) createTicketType(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var req newTicketTypeRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	tt, err := h.core.CreateTicketType(r.Context(), caller, eventID, toNewTicketType(req))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/events/"+eventID.String()+"/ticket-types")
	web.Respond(w, http.StatusCreated, toTicketTypeJSON(tt))
}

func (h handlers) ticketTypes(w http.ResponseWriter, r *http.Request) {
	eventID, err := eventIDParam(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	types, err := h.core.TicketTypes(r.Context(), eventID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	out := ticketTypeListJSON{Items: make([]ticketTypeJSON, len(types))}
	for i, tt := range types {
		out.Items[i] = toTicketTypeJSON(tt)
	}
	web.Respond(w, http.StatusOK, out)
}

func (h handlers) purchase(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var req purchaseRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	var v errs.Validation
	var typeID uuid.UUID
	if req.TicketTypeID == nil {
		v.Add("ticket_type_id", "is required")
	} else if typeID, err = uuid.Parse(*req.TicketTypeID); err != nil {
		v.Add("ticket_type_id", "must be a ticket type id")
	}
	if err := v.Err(); err != nil {
		web.Error(w, r, err)
		return
	}
	key, hasKey := r.Header[http.CanonicalHeaderKey(HeaderIdempotencyKey)]
	p := Purchase{EventID: eventID, TicketTypeID: typeID}
	if hasKey {
		if len(key) != 1 || key[0] == "" {
			web.Error(w, r, errBadKey)
			return
		}
		p.IdempotencyKey = key[0]
	}
	res, err := h.core.Purchase(r.Context(), caller, p, func(t Ticket) ([]byte, error) {
		t, err := h.core.SignTicket(r.Context(), t)
		if err != nil {
			return nil, err
		}
		return json.Marshal(toTicketJSON(t))
	})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if res.Replayed {
		w.Header().Set(HeaderIdempotencyReplayed, "true")
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(append(res.Response, '\n'))
}

func (h handlers) eventTickets(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	pr, err := ParsePageRequest(r.URL.Query().Get("limit"), r.URL.Query().Get("cursor"), DefaultPageSize, MaxPageSize)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	p, err := h.core.EventTickets(r.Context(), caller, eventID, pr)
	if err == nil {
		err = h.core.SignTickets(r.Context(), p.Items)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toTicketPageJSON(p))
}

func (h handlers) myTickets(w http.ResponseWriter, r *http.Request) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	pr, err := ParsePageRequest(r.URL.Query().Get("limit"), r.URL.Query().Get("cursor"), DefaultPageSize, MaxPageSize)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	p, err := h.core.MyTickets(r.Context(), caller, pr)
	if err == nil {
		err = h.core.SignTickets(r.Context(), p.Items)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toTicketPageJSON(p))
}

func (h handlers) qr(w http.ResponseWriter, r *http.Request) {
	caller, id, err := callerAndTicket(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	png, err := h.core.QR(r.Context(), caller, id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	// The code is the ticket: keep it out of shared caches.
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(png)
}

func (h handlers) validate(w http.ResponseWriter, r *http.Request) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	v, err := h.core.Validate(r.Context(), caller, chi.URLParam(r, "id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toValidationJSON(v))
}

func (h handlers) checkIn(w http.ResponseWriter, r *http.Request) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	t, err := h.core.CheckIn(r.Context(), caller, chi.URLParam(r, "id"))
	if err == nil {
		t, err = h.core.SignTicket(r.Context(), t)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toTicketJSON(t))
}

func (h handlers) holders(w http.ResponseWriter, r *http.Request) {
	eventID, err := eventIDParam(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	pr, err := ParsePageRequest(q.Get("limit"), q.Get("cursor"), DefaultInternalPageSize, MaxInternalPageSize)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	p, err := h.core.Holders(r.Context(), eventID, Status(q.Get("status")), pr)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.Respond(w, http.StatusOK, toHolderPageJSON(p))
}
