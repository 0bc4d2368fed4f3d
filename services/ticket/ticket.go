// Package ticket is the ticket service: ticket types of published events, purchases, the
// buyer's tickets with their QR codes, and validation and check-in at the door (flows 7, 8,
// 10, 11 and 12 of the design). It consumes event.cancelled to cancel an event's tickets and
// serves the event's holders to the notification service.
//
// Layers: http.go (routes, JSON ↔ business converters) → Core (rules) → Store (SQL).
//
// The rules that must hold under concurrency are enforced by PostgreSQL, never by reading
// and then writing in Go:
//   - A purchase is one statement (Store.Purchase): the counter update guarded by
//     sold < quantity, the sales window and the event's cancellation, the ticket insert, the
//     ticket.purchased outbox insert and the Idempotency-Key record. A sold-out type can
//     never sell one more, and a committed ticket never lacks its message.
//   - Check-in is an UPDATE guarded by status = 'active', with ticket.checkin in the outbox in
//     the same transaction: of any number of concurrent check-ins one wins.
//   - The Idempotency-Key record's primary key makes concurrent retries end with one ticket.
//
// Messages are keyed by event id (as every Sbor message is keyed by its event), so one
// event's purchases and check-ins reach consumers in order and a ticket's check-in never
// overtakes its purchase.
//
// The event service is asked (GET /internal/events/{id}, 2 s timeout) whether an event is
// published and who owns it when a type is created and when a ticket is bought; its
// organizer and title are copied onto the type (a published event's no longer change), so
// validation, check-in and the attendee list decide locally. A cancellation recorded from
// event.cancelled refuses purchases and new types without asking the event service.
package ticket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/yeqown/go-qrcode/v2"
	"github.com/yeqown/go-qrcode/writer/standard"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
)

// Source is the CloudEvents source of every message this service publishes.
const Source = "sbor/ticket"

// Topics are the topics this service publishes to (before the topic prefix).
var Topics = []string{cloudevent.TypeTicketPurchased, cloudevent.TypeTicketCheckin}

// Events is what the ticket service asks of the event service.
type Events interface {
	Event(ctx context.Context, id uuid.UUID) (EventInfo, error)
}

// Core holds the ticket service's rules.
type Core struct {
	store  *Store
	events Events
	now    func() time.Time
}

// NewCore returns the business layer.
func NewCore(store *Store, events Events) *Core {
	return &Core{store: store, events: events, now: time.Now}
}

var (
	errNotOwner          = errs.New(errs.Forbidden, "not_owner", "only the event's organizer may do this")
	errEventNotPublished = errs.New(errs.Conflict, "event_not_published", "the event is not published")
	errOutsideWindow     = errs.New(errs.Conflict, "outside_sales_window", "tickets of this type are not on sale now")
	errSoldOut           = errs.New(errs.Conflict, "sold_out", "no tickets of this type are left")
	errAlreadyUsed       = errs.New(errs.Conflict, "already_used", "the ticket has already been checked in")
	errTicketCancelled   = errs.New(errs.Conflict, "ticket_cancelled", "the ticket is cancelled")
	errKeyReused         = errs.New(errs.Unprocessable, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
	errBadKey            = errs.New(errs.Invalid, "invalid_idempotency_key", "the Idempotency-Key header must be 1 to 200 visible ASCII characters")
	errBadStatus         = errs.New(errs.Invalid, "invalid_status", "status must be one of active, used, cancelled")
)

// CreateTicketType adds a type to the caller's published event.
func (c *Core) CreateTicketType(ctx context.Context, caller identity.Identity, eventID uuid.UUID, nt NewTicketType) (TicketType, error) {
	v, err := nt.Validate(c.now())
	if err != nil {
		return TicketType{}, err
	}
	// A recorded cancellation answers without the event service, so it holds while that
	// service is down.
	owner, cancelled, err := c.store.CancelledEvent(ctx, eventID)
	if err != nil {
		return TicketType{}, err
	}
	if cancelled {
		if owner != caller.UserID {
			return TicketType{}, errNotOwner
		}
		return TicketType{}, errEventCancelled
	}
	ev, err := c.events.Event(ctx, eventID)
	if err != nil {
		return TicketType{}, err
	}
	if ev.OrganizerID != caller.UserID {
		if ev.Status == EventDraft {
			return TicketType{}, errEventNotFound // a draft is private: do not confirm it exists
		}
		return TicketType{}, errNotOwner
	}
	switch ev.Status {
	case EventPublished:
	case EventCancelled:
		return TicketType{}, errEventCancelled
	default:
		return TicketType{}, errEventNotPublished
	}
	if v.SalesEnd.After(ev.EndsAt) {
		var fe errs.Validation
		fe.Add("sales_end", "must not be after the event ends ("+ev.EndsAt.Format(time.RFC3339)+")")
		return TicketType{}, fe.Err()
	}
	return c.store.CreateTicketType(ctx, TicketType{
		ID: uuid.New(), EventID: eventID, OrganizerID: ev.OrganizerID, EventTitle: ev.Title,
		Kind: v.Kind, PriceCents: v.PriceCents, Currency: v.Currency, Quantity: v.Quantity,
		SalesStart: v.SalesStart, SalesEnd: v.SalesEnd,
	})
}

// TicketTypes lists an event's types with what is sold and left. An event this service has
// no types of has an empty list, whether or not it exists: listing is public and answering
// it must not cost a call to the event service.
func (c *Core) TicketTypes(ctx context.Context, eventID uuid.UUID) ([]TicketType, error) {
	return c.store.TicketTypes(ctx, eventID)
}

// Purchase buys one ticket of a type for the caller. render makes the response body of the
// new ticket; it is stored with the Idempotency-Key so that a retry gets the same bytes.
func (c *Core) Purchase(ctx context.Context, caller identity.Identity, p Purchase, render func(Ticket) ([]byte, error)) (PurchaseResult, error) {
	if p.IdempotencyKey != "" {
		if !validIdempotencyKey(p.IdempotencyKey) {
			return PurchaseResult{}, errBadKey
		}
		rec, ok, err := c.store.PurchaseRecord(ctx, caller.UserID, p.IdempotencyKey)
		if err != nil {
			return PurchaseResult{}, err
		}
		if ok {
			return replay(rec, p)
		}
	}

	// Cheap local checks first: they answer sold out, closed sales and a recorded
	// cancellation without queueing on the counter's row lock or calling the event service.
	// The purchase statement checks all three again, atomically.
	tt, err := c.store.TicketType(ctx, p.EventID, p.TicketTypeID)
	if err != nil {
		return PurchaseResult{}, err
	}
	if err := c.refusal(tt); err != nil {
		return PurchaseResult{}, err
	}
	// The event service has the last word on the event's status: it closes the window
	// between a cancellation's commit there and its message reaching this service.
	ev, err := c.events.Event(ctx, p.EventID)
	if err != nil {
		return PurchaseResult{}, err
	}
	switch ev.Status {
	case EventPublished:
	case EventCancelled:
		return PurchaseResult{}, errEventCancelled
	default:
		return PurchaseResult{}, errEventNotPublished
	}

	for attempt := 1; ; attempt++ {
		np, err := c.preparePurchase(caller, p, tt, render)
		if err != nil {
			return PurchaseResult{}, err
		}
		err = c.store.Purchase(ctx, np)
		switch {
		case err == nil:
			return PurchaseResult{Ticket: np.Ticket, Response: np.Response}, nil
		case errors.Is(err, errCodeCollision) && attempt < 3:
			continue
		case errors.Is(err, errIdempotencyRace):
			rec, ok, err := c.store.PurchaseRecord(ctx, caller.UserID, p.IdempotencyKey)
			if err != nil {
				return PurchaseResult{}, err
			}
			if !ok {
				return PurchaseResult{}, fmt.Errorf("idempotency record of %s vanished", caller.UserID)
			}
			return replay(rec, p)
		case errors.Is(err, errNotPurchased):
			// Say why: read the counter again (this read only picks the error message).
			now, err := c.store.TicketType(ctx, p.EventID, p.TicketTypeID)
			if err != nil {
				return PurchaseResult{}, err
			}
			if err := c.refusal(now); err != nil {
				return PurchaseResult{}, err
			}
			return PurchaseResult{}, errSoldOut
		default:
			return PurchaseResult{}, err
		}
	}
}

// refusal says why tt cannot be bought now, or nil if it may be.
func (c *Core) refusal(tt TicketType) error {
	switch {
	case tt.EventCancelledAt != nil:
		return errEventCancelled
	case !tt.OnSale(c.now()):
		return errOutsideWindow
	case tt.Sold >= tt.Quantity:
		return errSoldOut
	}
	return nil
}

// preparePurchase builds the ticket, its message and its response before the purchase
// statement runs, so the statement holds the counter's lock for nothing but itself.
func (c *Core) preparePurchase(caller identity.Identity, p Purchase, tt TicketType, render func(Ticket) ([]byte, error)) (newPurchase, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return newPurchase{}, err
	}
	t := Ticket{
		ID: id, Code: NewCode(), EventID: tt.EventID, TicketTypeID: tt.ID, UserID: caller.UserID,
		OrganizerID: tt.OrganizerID, Status: StatusActive, PurchasedAt: c.now().UTC().Truncate(time.Microsecond),
	}
	ev, err := cloudevent.New(Source, cloudevent.TypeTicketPurchased, t.ID.String(), t.PurchasedAt, ticketData(t, tt.Kind, tt.EventTitle))
	if err != nil {
		return newPurchase{}, err
	}
	msg, err := outbox.FromEvent(t.EventID.String(), ev, nil)
	if err != nil {
		return newPurchase{}, err
	}
	resp, err := render(t)
	if err != nil {
		return newPurchase{}, err
	}
	np := newPurchase{Ticket: t, Message: msg, Response: resp}
	if p.IdempotencyKey != "" {
		np.Key, np.RequestHash = p.IdempotencyKey, p.requestHash()
	}
	return np, nil
}

func replay(rec purchaseRecord, p Purchase) (PurchaseResult, error) {
	if !bytes.Equal(rec.RequestHash, p.requestHash()) {
		return PurchaseResult{}, errKeyReused
	}
	return PurchaseResult{Ticket: Ticket{ID: rec.TicketID}, Response: rec.Response, Replayed: true}, nil
}

func ticketData(t Ticket, kind Kind, eventTitle string) cloudevent.TicketData {
	return cloudevent.TicketData{
		TicketID: t.ID, EventID: t.EventID, TicketTypeID: t.TicketTypeID, UserID: t.UserID,
		EventTitle: eventTitle, TicketType: string(kind), PurchasedAt: t.PurchasedAt, CheckedInAt: t.CheckedInAt,
	}
}

// TicketPage is one page of tickets; Next is the cursor of the next page, empty on the last.
type TicketPage struct {
	Items []Ticket
	Next  string
}

func page(ts []Ticket, limit int) TicketPage {
	if len(ts) <= limit {
		return TicketPage{Items: ts}
	}
	ts = ts[:limit]
	return TicketPage{Items: ts, Next: EncodeCursor(ts[len(ts)-1].ID)}
}

// MyTickets pages through the caller's tickets, newest first, with their current status.
func (c *Core) MyTickets(ctx context.Context, caller identity.Identity, pr PageRequest) (TicketPage, error) {
	ts, err := c.store.UserTickets(ctx, caller.UserID, pr)
	if err != nil {
		return TicketPage{}, err
	}
	return page(ts, pr.Limit), nil
}

// EventTickets pages through an event's tickets (the attendee list) for its organizer.
func (c *Core) EventTickets(ctx context.Context, caller identity.Identity, eventID uuid.UUID, pr PageRequest) (TicketPage, error) {
	owner, known, err := c.store.EventOwner(ctx, eventID)
	if err != nil {
		return TicketPage{}, err
	}
	if !known {
		// No type, hence no ticket, yet: only the event service knows whose event it is.
		ev, err := c.events.Event(ctx, eventID)
		if err != nil {
			return TicketPage{}, err
		}
		if ev.OrganizerID != caller.UserID && ev.Status == EventDraft {
			return TicketPage{}, errEventNotFound
		}
		owner.OrganizerID = ev.OrganizerID
	}
	if owner.OrganizerID != caller.UserID {
		return TicketPage{}, errNotOwner
	}
	ts, err := c.store.EventTickets(ctx, eventID, "", pr)
	if err != nil {
		return TicketPage{}, err
	}
	return page(ts, pr.Limit), nil
}

// Holders pages through an event's tickets of one status ("" for any), for the
// notification service.
func (c *Core) Holders(ctx context.Context, eventID uuid.UUID, status Status, pr PageRequest) (TicketPage, error) {
	if status != "" && !status.Valid() {
		return TicketPage{}, errBadStatus
	}
	ts, err := c.store.EventTickets(ctx, eventID, status, pr)
	if err != nil {
		return TicketPage{}, err
	}
	return page(ts, pr.Limit), nil
}

// QR returns a PNG of the QR code of the caller's ticket. Anyone else's ticket is NotFound,
// so ticket ids reveal nothing.
func (c *Core) QR(ctx context.Context, caller identity.Identity, ticketID uuid.UUID) ([]byte, error) {
	t, err := c.store.ByID(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	if t.UserID != caller.UserID {
		return nil, errTicketNotFound
	}
	return qrPNG(t.Code)
}

// qrPNG renders text as a PNG QR code with error correction level Q (a quarter of the
// symbol can be damaged or covered), 8 pixels a module and the 4-module quiet zone scanners
// need.
func qrPNG(text string) ([]byte, error) {
	qr, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionQuart))
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	var buf bytes.Buffer
	w := standard.NewWithWriter(nopCloser{&buf},
		standard.WithBuiltinImageEncoder(standard.PNG_FORMAT), standard.WithQRWidth(8), standard.WithBorderWidth(32))
	if err := qr.Save(w); err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	return buf.Bytes(), nil
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// ticketForOrganizer finds the ticket with a code for the organizer of its event: a
// malformed or unknown code is NotFound, another organizer's ticket Forbidden.
func (c *Core) ticketForOrganizer(ctx context.Context, caller identity.Identity, rawCode string) (Ticket, error) {
	code, err := ParseCode(rawCode)
	if err != nil {
		return Ticket{}, err
	}
	t, err := c.store.ByCode(ctx, code)
	if err != nil {
		return Ticket{}, err
	}
	if t.OrganizerID != caller.UserID {
		return Ticket{}, errs.New(errs.Forbidden, "not_owner", "only the organizer of the ticket's event may do this")
	}
	return t, nil
}

// Validate says whether the ticket with a code may get in, without changing it.
func (c *Core) Validate(ctx context.Context, caller identity.Identity, rawCode string) (Validation, error) {
	t, err := c.ticketForOrganizer(ctx, caller, rawCode)
	if err != nil {
		return Validation{}, err
	}
	return validation(t), nil
}

func validation(t Ticket) Validation {
	switch t.Status {
	case StatusActive:
		return Validation{Valid: true, Status: t.Status}
	case StatusUsed:
		return Validation{Status: t.Status, Reason: "already_used"}
	default:
		return Validation{Status: t.Status, Reason: "ticket_cancelled"}
	}
}

// CheckIn lets the ticket with a code in: active → used, once.
func (c *Core) CheckIn(ctx context.Context, caller identity.Identity, rawCode string) (Ticket, error) {
	code, err := ParseCode(rawCode)
	if err != nil {
		return Ticket{}, err
	}
	at := c.now().UTC().Truncate(time.Microsecond)
	t, checkedIn, err := c.store.CheckIn(ctx, code, caller.UserID, at, func(t Ticket, kind Kind, eventTitle string) (outbox.Message, error) {
		ev, err := cloudevent.New(Source, cloudevent.TypeTicketCheckin, t.ID.String(), at, ticketData(t, kind, eventTitle))
		if err != nil {
			return outbox.Message{}, err
		}
		return outbox.FromEvent(t.EventID.String(), ev, nil)
	})
	if err != nil {
		return Ticket{}, err
	}
	if checkedIn {
		return t, nil
	}
	// Nothing was updated: say why, in the order unknown, not yours, not active.
	if t.OrganizerID != caller.UserID {
		return Ticket{}, errs.New(errs.Forbidden, "not_owner", "only the organizer of the ticket's event may do this")
	}
	switch t.Status {
	case StatusUsed:
		return Ticket{}, errAlreadyUsed
	case StatusCancelled:
		return Ticket{}, errTicketCancelled
	}
	return Ticket{}, fmt.Errorf("ticket %s is %s but could not be checked in", t.ID, t.Status)
}
