package notification

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
)

// Type says what a notification is about: the type of the CloudEvent that caused it, or, for
// a transfer, which side of it the user was on.
type Type string

const (
	TypeTicketPurchased Type = cloudevent.TypeTicketPurchased
	TypeEventCancelled  Type = cloudevent.TypeEventCancelled
	TypeEventReminder   Type = cloudevent.TypeEventReminder
	// From ticket.transferred: the holder who gave the ticket away, and its recipient.
	TypeTicketTransferredOut Type = "ticket_transferred_out"
	TypeTicketTransferredIn  Type = "ticket_transferred_in"
)

// Types are the notification types.
var Types = []Type{TypeTicketPurchased, TypeEventCancelled, TypeEventReminder, TypeTicketTransferredOut, TypeTicketTransferredIn}

// Consumed are the CloudEvent types the service consumes, which are also its topics.
var Consumed = []string{
	cloudevent.TypeTicketPurchased, cloudevent.TypeEventCancelled, cloudevent.TypeEventReminder,
	cloudevent.TypeTicketTransferred,
}

// Notification is one message shown to one user.
type Notification struct {
	ID      uuid.UUID
	UserID  uuid.UUID
	Type    Type
	Title   string
	Body    string
	EventID uuid.UUID
	// TicketID is set when the notification is about one ticket (a purchase).
	TicketID *uuid.UUID
	// SourceID is the id of the CloudEvent that caused the notification; with UserID and
	// Type it identifies the notification, so a redelivered event adds nothing.
	SourceID  string
	CreatedAt time.Time
	ReadAt    *time.Time
}

// Holder is a ticket of an event as the ticket service lists it.
type Holder struct {
	TicketID uuid.UUID
	UserID   uuid.UUID
	Status   string
}

// Ticket statuses the holder listing filters on.
const (
	TicketActive = "active"
	// TicketTransferred is a ticket its holder gave away: they hold it no longer.
	TicketTransferred = "transferred"
	// AnyStatus lists every ticket of an event, whatever its status.
	AnyStatus = ""
)

// HolderPage is one page of an event's tickets; an empty NextCursor means the last page.
type HolderPage struct {
	Items      []Holder
	NextCursor string
}

// Page is one page of a user's notifications, newest first.
type Page struct {
	Items      []Notification
	NextCursor string
}

// Paging of GET /api/notifications.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// The wording of notifications. Times are shown in UTC, the one zone every reader can
// convert from; the client knows the reader's zone, the server does not.
const whenLayout = "2 Jan 2006 at 15:04 MST"

func when(t time.Time) string { return t.UTC().Format(whenLayout) }

// quoted puts an event title in typographic quotes, or names it generically if it is empty.
func quoted(title string) string {
	title = strings.TrimSpace(title)
	if title == "" {
		return "your event"
	}
	return "“" + title + "”"
}

// capitalised upper-cases the first letter of s (for a sentence that starts with a title).
func capitalised(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ticketTypeNames are the ticket types as a sentence says them.
var ticketTypeNames = map[string]string{"standard": "standard", "vip": "VIP", "early_bird": "early-bird"}

// purchasedText is the title and body of a ticket purchase notification.
func purchasedText(d cloudevent.TicketData) (title, body string) {
	kind := ""
	if name, ok := ticketTypeNames[d.TicketType]; ok {
		kind = name + " "
	}
	return "Ticket purchased", fmt.Sprintf("Your %sticket for %s is confirmed.", kind, quoted(d.EventTitle))
}

// cancelledText is the title and body of an event cancellation notification.
func cancelledText(d cloudevent.EventData) (title, body string) {
	subject := quoted(d.Title)
	if !d.StartsAt.IsZero() {
		subject += " on " + when(d.StartsAt)
	}
	return "Event cancelled", capitalised(subject) + " has been cancelled. Your tickets are no longer valid."
}

// reminderText is the title and body of an event reminder.
func reminderText(d cloudevent.EventData) (title, body string) {
	body = capitalised(quoted(d.Title))
	if !d.StartsAt.IsZero() {
		body += " starts on " + when(d.StartsAt)
	} else {
		body += " is coming up"
	}
	if venue := strings.TrimRight(strings.TrimSpace(d.Venue), "."); venue != "" {
		body += " at " + venue
	}
	return "Reminder", body + "."
}

// transferredOutText is the title and body of the notification of a ticket's former holder.
func transferredOutText(d cloudevent.TicketTransferData) (title, body string) {
	return "Ticket transferred", fmt.Sprintf("Your %s for %s has been transferred to another attendee; its old code no longer works.",
		ticketName(d.TicketType), quoted(d.EventTitle))
}

// transferredInText is the title and body of the notification of a ticket's recipient.
func transferredInText(d cloudevent.TicketTransferData) (title, body string) {
	return "Ticket received", fmt.Sprintf("You have been given a %s for %s. It is in your tickets, with its own code.",
		ticketName(d.TicketType), quoted(d.EventTitle))
}

// ticketName says "VIP ticket", or just "ticket" for an unknown type.
func ticketName(kind string) string {
	if name, ok := ticketTypeNames[kind]; ok {
		return name + " ticket"
	}
	return "ticket"
}
