package ticket

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
)

// Ticket transfers (issue 10): the holder of an active ticket gives it to another registered
// user, named by email. In one transaction (Store.Transfer), under the event's advisory lock:
// the old ticket becomes `transferred` and is revoked (revoked_at, revocation_seq: it joins
// the event's revocation list, so offline scanners refuse its signed code, and validate and
// check-in refuse both its codes), the recipient gets a new ticket of the same type (new id,
// new plain and signed code; the type's sold is unchanged), and ticket.transferred goes to
// the outbox. The UPDATE is guarded by status = 'active' and the holder, so of concurrent
// transfers (or a transfer racing a check-in) of one ticket exactly one succeeds; the event
// lock orders a transfer with the event's cancellation, so a transfer either commits before
// it (and its new ticket is cancelled with the others) or sees the ticket cancelled.
//
// A transfer neither frees nor uses purchase quota (max_per_user counts purchases): passing
// tickets around can never lift a limit.

// Transfers gives tickets to other users. It shares the Core's store, event service client
// and event status cache, and resolves emails through the user service.
type Transfers struct {
	core  *Core
	users Users
}

// NewTransfers returns the transfer rules over core, resolving emails with users.
func NewTransfers(core *Core, users Users) *Transfers { return &Transfers{core: core, users: users} }

var (
	errTicketNotActive = errs.New(errs.Conflict, "ticket_not_active",
		"only an active ticket can be transferred; this one is used, cancelled or already transferred")
	errTransferToSelf    = errs.New(errs.Unprocessable, "cannot_transfer_to_self", "the ticket is already yours")
	errTicketTransferred = errs.New(errs.Conflict, "ticket_transferred", "the ticket was transferred to someone else")
)

// transferAttempts bounds the retries of a transfer whose new random code collided.
const transferAttempts = 3

// Transfer gives the caller's active ticket to the user with email and returns the old
// ticket, now transferred. Someone else's ticket, or an unknown one, is NotFound.
func (tr *Transfers) Transfer(ctx context.Context, caller identity.Identity, ticketID uuid.UUID, email string) (Ticket, error) {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > MaxEmailLen || !strings.Contains(email, "@") {
		return Ticket{}, invalidEmail()
	}
	c := tr.core
	t, err := c.store.ByID(ctx, ticketID)
	if err != nil {
		return Ticket{}, err
	}
	if t.UserID != caller.UserID {
		return Ticket{}, errTicketNotFound
	}
	if err := tr.checkEventNotCancelled(ctx, t.EventID); err != nil {
		return Ticket{}, err
	}
	if t.Status != StatusActive {
		return Ticket{}, errTicketNotActive
	}
	to, err := tr.users.ByEmail(ctx, email)
	if err != nil {
		return Ticket{}, err
	}
	if to.ID == caller.UserID {
		return Ticket{}, errTransferToSelf
	}

	for attempt := 1; ; attempt++ {
		at := c.now().UTC().Truncate(time.Microsecond)
		id, err := uuid.NewV7()
		if err != nil {
			return Ticket{}, err
		}
		next := Ticket{
			ID: id, Code: NewCode(), EventID: t.EventID, TicketTypeID: t.TicketTypeID, UserID: to.ID,
			OrganizerID: t.OrganizerID, Status: StatusActive, PurchasedAt: at, TransferredFrom: &t.ID,
		}
		old, moved, err := c.store.Transfer(ctx, t.ID, caller.UserID, next, at,
			func(old Ticket, kind Kind, eventTitle string) (outbox.Message, error) {
				data := cloudevent.TicketTransferData{
					TicketData:  ticketData(old, kind, eventTitle),
					NewTicketID: next.ID, FromUserID: old.UserID, ToUserID: next.UserID, TransferredAt: at,
				}
				ev, err := cloudevent.New(Source, cloudevent.TypeTicketTransferred, old.ID.String(), at, data)
				if err != nil {
					return outbox.Message{}, err
				}
				return outbox.FromEvent(old.EventID.String(), ev, nil)
			})
		switch {
		case errors.Is(err, errCodeCollision) && attempt < transferAttempts:
			continue
		case err != nil:
			return Ticket{}, err
		case moved:
			return old, nil
		}
		// Nothing changed: another transfer, a check-in or the event's cancellation came
		// first. Say which, as above.
		if old.UserID != caller.UserID {
			return Ticket{}, errTicketNotFound
		}
		if old.Status == StatusCancelled {
			return Ticket{}, errEventCancelled
		}
		return Ticket{}, errTicketNotActive
	}
}

// checkEventNotCancelled refuses a transfer for an event whose cancellation is recorded here
// or that the event service calls cancelled. Transfers are rare, so the event service is
// asked each time rather than through the purchases' status cache, whose "published" may be
// a second old. When it cannot answer, the transfer goes on: the transaction still refuses a
// ticket the recorded cancellation cancelled, and a cancellation recorded later cancels the
// new ticket with every other active ticket of the event.
func (tr *Transfers) checkEventNotCancelled(ctx context.Context, eventID uuid.UUID) error {
	c := tr.core
	if _, cancelled, err := c.store.CancelledEvent(ctx, eventID); err != nil {
		return err
	} else if cancelled {
		return errEventCancelled
	}
	ev, err := c.events.Event(ctx, eventID)
	if err == nil && ev.Status == EventCancelled {
		c.status.cancel(eventID)
		return errEventCancelled
	}
	return nil
}
