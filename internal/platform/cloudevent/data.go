package cloudevent

import (
	"time"

	"github.com/google/uuid"
)

// The data payloads below are the contract between producers and consumers; fields are only
// ever added.

// EventData is the data of every event.* message: the event as it is after the change.
type EventData struct {
	EventID     uuid.UUID `json:"event_id"`
	OrganizerID uuid.UUID `json:"organizer_id"`
	Title       string    `json:"title"`
	Venue       string    `json:"venue"`
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
	Status      string    `json:"status"`
	// Version increases with every change, so a consumer can drop a stale message.
	Version int64 `json:"version"`
}

// TicketData is the data of ticket.* messages.
type TicketData struct {
	TicketID     uuid.UUID  `json:"ticket_id"`
	EventID      uuid.UUID  `json:"event_id"`
	TicketTypeID uuid.UUID  `json:"ticket_type_id"`
	UserID       uuid.UUID  `json:"user_id"`
	EventTitle   string     `json:"event_title"`
	TicketType   string     `json:"ticket_type"`
	PurchasedAt  time.Time  `json:"purchased_at"`
	CheckedInAt  *time.Time `json:"checked_in_at,omitempty"`
}

// TicketTransferData is the data of ticket.transferred: the ticket given away (TicketData,
// with UserID its former holder and PurchasedAt when it was bought), the recipient's new
// ticket and who gave it to whom.
type TicketTransferData struct {
	TicketData
	NewTicketID   uuid.UUID `json:"new_ticket_id"`
	FromUserID    uuid.UUID `json:"from_user_id"`
	ToUserID      uuid.UUID `json:"to_user_id"`
	TransferredAt time.Time `json:"transferred_at"`
}
