package notification

import (
	"context"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
)

// TicketTransferred notifies both sides of a ticket.transferred: the former holder
// (ticket_transferred_out, about the old ticket) and the recipient (ticket_transferred_in,
// about the new one). Each row is inserted ON CONFLICT DO NOTHING on (source id, user, type),
// so a redelivered message, or two replicas handling it, leave exactly one of each. Data
// that names no ticket, new ticket, event or user is Invalid (permanent).
func (c *Core) TicketTransferred(ctx context.Context, src Source, d cloudevent.TicketTransferData) error {
	switch {
	case d.TicketID == uuid.Nil:
		return invalidData("ticket.transferred without ticket_id")
	case d.NewTicketID == uuid.Nil:
		return invalidData("ticket.transferred without new_ticket_id")
	case d.EventID == uuid.Nil:
		return invalidData("ticket.transferred without event_id")
	case d.FromUserID == uuid.Nil || d.ToUserID == uuid.Nil:
		return invalidData("ticket.transferred without from_user_id or to_user_id")
	case d.FromUserID == d.ToUserID:
		return invalidData("ticket.transferred from a user to the same user")
	}
	oldID, newTicketID := d.TicketID, d.NewTicketID
	outTitle, outBody := transferredOutText(d)
	inTitle, inBody := transferredInText(d)
	out := Notification{ID: newID(), UserID: d.FromUserID, Type: TypeTicketTransferredOut, Title: outTitle, Body: outBody,
		EventID: d.EventID, TicketID: &oldID, SourceID: src.ID}
	in := Notification{ID: newID(), UserID: d.ToUserID, Type: TypeTicketTransferredIn, Title: inTitle, Body: inBody,
		EventID: d.EventID, TicketID: &newTicketID, SourceID: src.ID}
	// One insert per side, so each is counted under its own type; a failure after the first
	// retries the message, and the first is then skipped by its unique key.
	if _, err := c.insert(ctx, src, TypeTicketTransferredOut, []Notification{out}); err != nil {
		return err
	}
	_, err := c.insert(ctx, src, TypeTicketTransferredIn, []Notification{in})
	return err
}
