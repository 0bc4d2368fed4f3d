// Package notification is the notification service: it turns the platform's Kafka events
// into messages for users (flows 9, 14 and 15 of the design) and serves them.
//
//   - ticket.purchased → one "ticket purchased" notification for the buyer;
//   - event.cancelled → one notification for every holder of a ticket of the event, however
//     many tickets they hold, the holders paged from the ticket service's internal route
//     (a ticket its holder transferred away no longer counts as theirs);
//   - event.reminder → the same for holders of active tickets;
//   - ticket.transferred → one notification for the former holder (ticket_transferred_out)
//     and one for the recipient (ticket_transferred_in), transfer.go.
//
// Every notification is keyed by (source CloudEvent id, user, type) with a unique constraint
// and inserted ON CONFLICT DO NOTHING, one statement per page of holders and one per batch of
// purchases the consumer fetched together (up to MaxBatch). That, and offsets
// committed only after the insert, make handling idempotent in the database rather than in
// memory: a redelivered message, a consumer that crashed half-way through a page of holders,
// and two replicas handling the same message all leave exactly one notification per user.
//
// Layers: http.go (routes, JSON ↔ business converters) and consumer.go (Kafka messages ↔
// business calls) → Core (rules) → Store (SQL); tickets.go is the ticket service client.
package notification

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// HolderSource lists the tickets of an event, a page at a time (the ticket service).
type HolderSource interface {
	Holders(ctx context.Context, eventID uuid.UUID, status, cursor string, limit int) (HolderPage, error)
}

// Source identifies the CloudEvent a notification comes from.
type Source struct {
	// ID is the CloudEvent's id: with the user and the type it identifies a notification.
	ID string
	// Time is when the fact happened (the CloudEvent's time); the delay to the insert is
	// measured from it.
	Time time.Time
}

// Core holds the notification service's rules.
type Core struct {
	store   *Store
	holders HolderSource
	log     *slog.Logger
	// HolderPageSize is how many tickets are asked of the ticket service, and inserted with
	// one statement, at a time.
	HolderPageSize int
	now            func() time.Time
}

// DefaultHolderPageSize is the holder page size: one round trip and one insert per hundred
// tickets (the ticket service's internal listing serves up to 500).
const DefaultHolderPageSize = 100

// NewCore returns the business layer.
func NewCore(store *Store, holders HolderSource, log *slog.Logger) *Core {
	return &Core{store: store, holders: holders, log: log, HolderPageSize: DefaultHolderPageSize, now: time.Now}
}

func invalidData(format string, args ...any) error {
	return errs.Newf(errs.Invalid, "invalid_event_data", format, args...)
}

// Purchase is one ticket.purchased event: its source and its data.
type Purchase struct {
	Source Source
	Ticket cloudevent.TicketData
}

// TicketPurchased notifies the buyer of a ticket. Data that names no ticket, event or buyer
// is Invalid: no retry can fix it.
func (c *Core) TicketPurchased(ctx context.Context, src Source, d cloudevent.TicketData) error {
	if err := ValidatePurchase(d); err != nil {
		return err
	}
	return c.TicketsPurchased(ctx, []Purchase{{Source: src, Ticket: d}})
}

// ValidatePurchase says whether a ticket.purchased event can ever be notified: it must name
// its ticket, event and buyer.
func ValidatePurchase(d cloudevent.TicketData) error {
	switch {
	case d.TicketID == uuid.Nil:
		return invalidData("ticket.purchased without ticket_id")
	case d.EventID == uuid.Nil:
		return invalidData("ticket.purchased without event_id")
	case d.UserID == uuid.Nil:
		return invalidData("ticket.purchased without user_id")
	}
	return nil
}

// TicketsPurchased notifies the buyers of several tickets with one statement (the consumer
// hands over what it fetched together: one commit for the lot instead of one per ticket).
// Every purchase must have passed ValidatePurchase. As for one purchase, a notification
// already stored for the same event is skipped in SQL, and a failure stores none of them.
func (c *Core) TicketsPurchased(ctx context.Context, ps []Purchase) error {
	ns := make([]Notification, 0, len(ps))
	sent := make(map[uuid.UUID]time.Time, len(ps)) // notification id → its fact's time
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		if seen[p.Source.ID] {
			continue // the same event twice in one batch: the unique key would skip it anyway
		}
		seen[p.Source.ID] = true
		title, body := purchasedText(p.Ticket)
		ticketID := p.Ticket.TicketID
		n := Notification{
			ID: newID(), UserID: p.Ticket.UserID, Type: TypeTicketPurchased, Title: title, Body: body,
			EventID: p.Ticket.EventID, TicketID: &ticketID, SourceID: p.Source.ID,
		}
		ns = append(ns, n)
		sent[n.ID] = p.Source.Time
	}
	created, err := c.store.InsertNew(ctx, ns)
	if err != nil {
		return err
	}
	if len(created) == 0 {
		return nil
	}
	createdTotal.WithLabelValues(string(TypeTicketPurchased)).Add(float64(len(created)))
	h := delaySeconds.WithLabelValues(string(TypeTicketPurchased))
	now := c.now()
	for _, id := range created {
		if t := sent[id]; !t.IsZero() {
			h.Observe(max(now.Sub(t).Seconds(), 0))
		}
	}
	return nil
}

// EventCancelled notifies every holder of a ticket of the event, whatever the ticket's
// status: the ticket service cancels the same tickets while this runs, so filtering on
// "active" would race with it.
func (c *Core) EventCancelled(ctx context.Context, src Source, d cloudevent.EventData) error {
	if d.EventID == uuid.Nil {
		return invalidData("event.cancelled without event_id")
	}
	title, body := cancelledText(d)
	return c.notifyHolders(ctx, src, TypeEventCancelled, d.EventID, AnyStatus, title, body)
}

// EventReminder notifies every holder of an active ticket of the event. A reminder that
// arrives for an event already cancelled is dropped.
func (c *Core) EventReminder(ctx context.Context, src Source, d cloudevent.EventData) error {
	if d.EventID == uuid.Nil {
		return invalidData("event.reminder without event_id")
	}
	if d.Status == "cancelled" {
		c.log.InfoContext(ctx, "reminder for a cancelled event dropped", "event_id", d.EventID, "source_id", src.ID)
		return nil
	}
	title, body := reminderText(d)
	return c.notifyHolders(ctx, src, TypeEventReminder, d.EventID, TicketActive, title, body)
}

// notifyHolders pages through the event's tickets and inserts one notification per user
// and page with one statement. A user with tickets on several pages, or a page seen again
// after a retry, conflicts with the stored row and is skipped in SQL. Any failure returns
// the error before the offset is committed, so the whole message is handled again.
func (c *Core) notifyHolders(ctx context.Context, src Source, typ Type, eventID uuid.UUID, status, title, body string) error {
	cursor := ""
	pages, inserted := 0, int64(0)
	for {
		page, err := c.holders.Holders(ctx, eventID, status, cursor, c.HolderPageSize)
		if err != nil {
			return fmt.Errorf("list holders of event %s: %w", eventID, err)
		}
		pages++
		// One row per user of the page keeps the statement small; the unique key, not this
		// map, is what makes a user's notification unique.
		seen := make(map[uuid.UUID]bool, len(page.Items))
		ns := make([]Notification, 0, len(page.Items))
		for _, h := range page.Items {
			// A ticket given away is no longer its former holder's concern.
			if h.UserID == uuid.Nil || seen[h.UserID] || h.Status == TicketTransferred {
				continue
			}
			seen[h.UserID] = true
			ns = append(ns, Notification{
				ID: newID(), UserID: h.UserID, Type: typ, Title: title, Body: body,
				EventID: eventID, SourceID: src.ID,
			})
		}
		n, err := c.insert(ctx, src, typ, ns)
		if err != nil {
			return err
		}
		inserted += n
		if page.NextCursor == "" {
			break
		}
		if page.NextCursor == cursor {
			return fmt.Errorf("list holders of event %s: the ticket service returned the same cursor twice", eventID)
		}
		cursor = page.NextCursor
	}
	c.log.InfoContext(ctx, "holders notified", "type", typ, "event_id", eventID, "source_id", src.ID, "pages", pages, "new", inserted)
	return nil
}

// insert stores notifications and records, for the new ones, the delay from the fact to
// the notification being visible.
func (c *Core) insert(ctx context.Context, src Source, typ Type, ns []Notification) (int64, error) {
	n, err := c.store.Insert(ctx, ns)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		createdTotal.WithLabelValues(string(typ)).Add(float64(n))
		if !src.Time.IsZero() {
			delay := max(c.now().Sub(src.Time).Seconds(), 0)
			h := delaySeconds.WithLabelValues(string(typ))
			for range n {
				h.Observe(delay)
			}
		}
	}
	return n, nil
}

// List returns a page of the user's notifications, newest first. cursor is the previous
// page's NextCursor or empty; limit 0 means DefaultLimit.
func (c *Core) List(ctx context.Context, userID uuid.UUID, cursor string, limit int) (Page, error) {
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 1 || limit > MaxLimit:
		return Page{}, errInvalidLimit
	}
	var after *listCursor
	if cursor != "" {
		lc, err := decodeCursor(cursor)
		if err != nil {
			return Page{}, err
		}
		after = &lc
	}
	items, err := c.store.List(ctx, userID, after, limit+1)
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = listCursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode()
	}
	return page, nil
}

// MarkRead marks the user's notification read (idempotently) and returns it. Anyone else's
// notification, like an unknown one, is not found.
func (c *Core) MarkRead(ctx context.Context, userID, id uuid.UUID) (Notification, error) {
	return c.store.MarkRead(ctx, userID, id)
}

// UnreadCount counts the user's unread notifications.
func (c *Core) UnreadCount(ctx context.Context, userID uuid.UUID) (int, error) {
	return c.store.UnreadCount(ctx, userID)
}

// newID returns a time-ordered id (UUIDv7), which keeps the primary key index append-mostly.
func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

var (
	errInvalidLimit  = errs.Newf(errs.Invalid, "invalid_limit", "limit must be a whole number from 1 to %d", MaxLimit)
	errInvalidCursor = errs.New(errs.Invalid, "invalid_cursor", "cursor must be a next_cursor returned by this list")
)

// listCursor is the position after which a page starts: the (created_at, id) of the last
// notification of the previous page. On the wire it is opaque: base64url of the time in
// microseconds (PostgreSQL's precision) and the id.
type listCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

func (lc listCursor) encode() string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(lc.CreatedAt.UnixMicro()))
	copy(b[8:], lc.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (listCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return listCursor{}, errInvalidCursor
	}
	var id uuid.UUID
	copy(id[:], b[8:])
	return listCursor{CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), ID: id}, nil
}
