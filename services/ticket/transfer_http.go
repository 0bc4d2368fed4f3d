package ticket

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

type transferRequest struct {
	Email *string `json:"email"`
}

type transferHandlers struct{ tr *Transfers }

// TransferRoutes mounts POST /api/tickets/{id}/transfer on r.
func TransferRoutes(r chi.Router, tr *Transfers) {
	h := transferHandlers{tr: tr}
	r.Post("/api/tickets/{id}/transfer", h.transfer)
}

// transfer answers 200 with the old ticket, now transferred; the recipient finds the new one
// in their own tickets.
func (h transferHandlers) transfer(w http.ResponseWriter, r *http.Request) {
	caller, id, err := callerAndTicket(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var req transferRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	if req.Email == nil {
		var v errs.Validation
		v.Add("email", "is required")
		web.Error(w, r, v.Err())
		return
	}
	t, err := h.tr.Transfer(r.Context(), caller, id, *req.Email)
	if err == nil {
		t, err = h.tr.core.SignTicket(r.Context(), t)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toTicketJSON(t))
}
