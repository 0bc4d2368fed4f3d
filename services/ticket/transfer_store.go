package ticket

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
)

// Transfer moves the active ticket id of holder to next.UserID, in one transaction: the old
// ticket becomes transferred and revoked, next (the recipient's new ticket, of the same event
// and type) is inserted, and the message built by announce from the old ticket goes to the
// outbox. The UPDATE is guarded by the holder and status = 'active', so of concurrent
// transfers of one ticket exactly one changes it; the others get the ticket as it is now,
// with moved false.
//
// The event's advisory lock (eventLockSQL) is taken first: revocation_seq must be drawn in
// commit order per event (migrations/00004), and it orders the transfer with the event's
// cancellation (Store.CancelEvent), which cancels every active ticket of the event under the
// same lock. The ticket's type must not be of a cancelled event: a transfer never creates
// an active ticket for one.
func (s *Store) Transfer(ctx context.Context, id, holder uuid.UUID, next Ticket, at time.Time,
	announce func(old Ticket, kind Kind, eventTitle string) (outbox.Message, error)) (old Ticket, moved bool, err error) {
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, eventLockSQL, next.EventID); err != nil {
			return err
		}
		var r ticketRow
		var kind, title string
		err := tx.QueryRow(ctx, `
			UPDATE tickets t SET status = 'transferred', transferred_at = $3,
				revoked_at = $3, revocation_seq = nextval('ticket_revocation_seq')
			FROM ticket_types tt
			WHERE t.id = $1 AND t.user_id = $2 AND t.status = 'active' AND t.event_id = $4
			  AND tt.id = t.ticket_type_id AND tt.event_cancelled_at IS NULL
			RETURNING t.id, t.code, t.event_id, t.ticket_type_id, t.user_id, t.organizer_id, t.status,
			          t.purchased_at, t.checked_in_at, t.cancelled_at, t.transferred_at, t.transferred_from,
			          tt.type, tt.event_title`, id, holder, at, next.EventID).
			Scan(&r.ID, &r.Code, &r.EventID, &r.TicketTypeID, &r.UserID, &r.OrganizerID, &r.Status,
				&r.PurchasedAt, &r.CheckedInAt, &r.CancelledAt, &r.TransferredAt, &r.TransferredFrom, &kind, &title)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.TicketTypeID != next.TicketTypeID {
			return errors.New("transfer: the new ticket is not of the old one's type")
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at, transferred_from)
			VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8)`,
			next.ID, next.Code, next.EventID, next.TicketTypeID, next.UserID, next.OrganizerID, next.PurchasedAt, r.ID); err != nil {
			return err
		}
		old, moved = r.toTicket(), true
		msg, err := announce(old, Kind(kind), title)
		if err != nil {
			return err
		}
		return outbox.Add(ctx, tx, msg)
	})
	switch {
	case db.IsUniqueViolation(err, "tickets_code_key"):
		return Ticket{}, false, errCodeCollision
	case err != nil:
		return Ticket{}, false, storeError(err)
	case moved:
		return old, true, nil
	}
	old, err = s.ByID(ctx, id)
	return old, false, err
}
