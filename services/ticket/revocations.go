package ticket

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/ticketsig"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// The revocation list of an event: its tickets whose signed codes a scanner must refuse even
// though they verify, because the ticket was cancelled with its event or transferred to
// someone else (who got a new ticket). Each revoked ticket has a revocation_seq
// (migrations/00004); a scanner polls GET /api/events/{id}/revocations?since=n with the
// next_since of its last answer and gets what was revoked since. Because every writer of
// revocation_seq holds the event's lock (eventLockSQL) when it draws the number, an event's
// revocations commit in sequence order, and a poller never skips one.

// Revocation is one revoked ticket.
type Revocation struct {
	TicketID uuid.UUID
	// Reason is the ticket's status: cancelled or transferred.
	Reason    string
	RevokedAt time.Time
	Seq       int64
}

// RevocationPage is one page of an event's revocations; NextSince is the cursor to poll with
// next (the input cursor when the page is empty).
type RevocationPage struct {
	Items     []Revocation
	NextSince int64
}

// MaxRevocationsPage is how many revocations one answer carries at most.
const MaxRevocationsPage = 1000

var errBadSince = errs.New(errs.Invalid, "invalid_since", "since must be a whole number from 0 up, the next_since of an earlier answer")

// ParseSince reads the since query parameter: absent or 0 is from the start.
func ParseSince(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errBadSince
	}
	return n, nil
}

// Revocations returns up to limit revocations of an event with a sequence number above
// since, in sequence order.
func (s *Store) Revocations(ctx context.Context, eventID uuid.UUID, since int64, limit int) ([]Revocation, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, status, revoked_at, revocation_seq FROM tickets
		WHERE event_id = $1 AND revocation_seq > $2 ORDER BY revocation_seq LIMIT $3`, eventID, since, limit)
	if err != nil {
		return nil, db.Unavailable(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Revocation, error) {
		var r Revocation
		err := row.Scan(&r.TicketID, &r.Reason, &r.RevokedAt, &r.Seq)
		r.RevokedAt = r.RevokedAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, db.Unavailable(err)
	}
	return out, nil
}

// Revocations pages through an event's revocations for its organizer and staff; anyone else
// gets NotFound.
func (c *Core) Revocations(ctx context.Context, caller identity.Identity, eventID uuid.UUID, since int64) (RevocationPage, error) {
	may, err := c.scanAccess.MayScan(ctx, caller.UserID, eventID)
	if err != nil {
		return RevocationPage{}, err
	}
	if !may {
		return RevocationPage{}, errEventNotFound
	}
	items, err := c.store.Revocations(ctx, eventID, since, MaxRevocationsPage)
	if err != nil {
		return RevocationPage{}, err
	}
	p := RevocationPage{Items: items, NextSince: since}
	if len(items) > 0 {
		p.NextSince = items[len(items)-1].Seq
	}
	return p, nil
}

// SigningRoutes mounts the scanner's routes: the event's public keys and its revocations.
func SigningRoutes(r chi.Router, core *Core) {
	h := signingHandlers{core: core}
	r.Get("/api/events/{id}/scanner-keys", h.scannerKeys)
	r.Get("/api/events/{id}/revocations", h.revocations)
}

type signingHandlers struct{ core *Core }

type revocationJSON struct {
	TicketID  string    `json:"ticket_id"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
}

type revocationPageJSON struct {
	Items     []revocationJSON `json:"items"`
	NextSince int64            `json:"next_since"`
}

func toRevocationPageJSON(p RevocationPage) revocationPageJSON {
	out := revocationPageJSON{Items: make([]revocationJSON, len(p.Items)), NextSince: p.NextSince}
	for i, r := range p.Items {
		out.Items[i] = revocationJSON{TicketID: r.TicketID.String(), Reason: r.Reason, RevokedAt: r.RevokedAt}
	}
	return out
}

func (h signingHandlers) scannerKeys(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	keys, err := h.core.ScannerKeys(r.Context(), caller, eventID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	// Public keys, but only for the event's organizer and staff: private caching only.
	w.Header().Set("Cache-Control", "private, max-age=300")
	web.Respond(w, http.StatusOK, ticketsig.JWKS{Keys: keys})
}

func (h signingHandlers) revocations(w http.ResponseWriter, r *http.Request) {
	caller, eventID, err := callerAndEvent(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	since, err := ParseSince(r.URL.Query().Get("since"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	p, err := h.core.Revocations(r.Context(), caller, eventID, since)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, http.StatusOK, toRevocationPageJSON(p))
}
