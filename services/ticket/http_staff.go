package ticket

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// JSON of door staff, the events a user may scan and live counts (issue 10).

type staffMemberJSON struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	GrantedAt time.Time `json:"granted_at"`
}

func toStaffMemberJSON(m StaffMember) staffMemberJSON {
	return staffMemberJSON{UserID: m.UserID.String(), Email: m.Email, GrantedAt: m.GrantedAt.UTC()}
}

type staffListJSON struct {
	Items []staffMemberJSON `json:"items"`
}

type grantStaffRequest struct {
	Email *string `json:"email"`
}

type scannableJSON struct {
	EventID  string     `json:"event_id"`
	Title    string     `json:"title"`
	StartsAt *time.Time `json:"starts_at"`
	Role     string     `json:"role"`
}

type scannableListJSON struct {
	Items []scannableJSON `json:"items"`
}

func toScannableListJSON(list []Scannable) scannableListJSON {
	out := scannableListJSON{Items: make([]scannableJSON, len(list))}
	for i, sc := range list {
		out.Items[i] = scannableJSON{EventID: sc.EventID.String(), Title: sc.Title, StartsAt: utcPtr(sc.StartsAt), Role: sc.Role}
	}
	return out
}

type typeStatsJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	Sold      int    `json:"sold"`
	CheckedIn int    `json:"checked_in"`
	Remaining int    `json:"remaining"`
}

type eventStatsJSON struct {
	EventID     string          `json:"event_id"`
	Sold        int             `json:"sold"`
	CheckedIn   int             `json:"checked_in"`
	Remaining   int             `json:"remaining"`
	AsOf        time.Time       `json:"as_of"`
	TicketTypes []typeStatsJSON `json:"ticket_types"`
}

func toEventStatsJSON(s EventStats) eventStatsJSON {
	sold, checkedIn, remaining := s.Totals()
	out := eventStatsJSON{
		EventID: s.EventID.String(), Sold: sold, CheckedIn: checkedIn, Remaining: remaining, AsOf: s.AsOf.UTC(),
		TicketTypes: make([]typeStatsJSON, len(s.Types)),
	}
	for i, t := range s.Types {
		out.TicketTypes[i] = typeStatsJSON{
			ID: t.ID.String(), Name: string(t.Kind), Quantity: t.Quantity, Sold: t.Sold, CheckedIn: t.CheckedIn, Remaining: t.Remaining(),
		}
	}
	return out
}

type staffHandlers struct{ staff *Staff }

// StaffRoutes mounts the routes of door staff, the scanner's event list and live counts.
// DELETE /api/events/{id}/staff/{user_id} is the one route with a second path parameter.
func StaffRoutes(r chi.Router, staff *Staff) {
	h := staffHandlers{staff: staff}
	r.Get("/api/events/{id}/staff", h.list)
	r.Post("/api/events/{id}/staff", h.grant)
	r.Delete("/api/events/{id}/staff/{user_id}", h.revoke)
	r.Get("/api/staff/events", h.scannable)
	r.Get("/api/events/{id}/stats", h.stats)
}

func (h staffHandlers) list(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	members, err := h.staff.ListStaff(r.Context(), caller, eventID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	out := staffListJSON{Items: make([]staffMemberJSON, len(members))}
	for i, m := range members {
		out.Items[i] = toStaffMemberJSON(m)
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, out)
}

func (h staffHandlers) grant(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var req grantStaffRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	m, created, err := h.staff.GrantStaff(r.Context(), caller, eventID, req.Email)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", "/api/events/"+eventID.String()+"/staff")
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, status, toStaffMemberJSON(m))
}

func (h staffHandlers) revoke(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	if err := h.staff.RevokeStaff(r.Context(), caller, eventID, chi.URLParam(r, "user_id")); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h staffHandlers) scannable(w http.ResponseWriter, r *http.Request) {
	caller, err := identity.Require(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	list, err := h.staff.ScannableEvents(r.Context(), caller)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toScannableListJSON(list))
}

func (h staffHandlers) stats(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	s, err := h.staff.Stats(r.Context(), caller, eventID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	web.Respond(w, http.StatusOK, toEventStatsJSON(s))
}
