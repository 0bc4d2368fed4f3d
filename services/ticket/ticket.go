// Package ticket is the ticket service: ticket types of published events, purchases, the
// buyer's tickets with their QR codes, and validation and check-in at the door (flows 7, 8,
// 10, 11 and 12 of the design). It consumes event.cancelled to cancel an event's tickets and
// serves the event's holders to the notification service.
//
// Layers: http.go (routes, JSON ↔ business converters) → Core (rules) → Store (SQL).
//
// The rules that must hold under concurrency are enforced by PostgreSQL, never by reading
// and then writing in Go:
//   - Purchases are grouped (batch.go): the concurrent purchases of one type run as one
//     statement (Store.PurchaseBatch, purchase_tickets_limited in migrations/00005) that inserts
//     their tickets, ticket.purchased outbox rows and Idempotency-Key records, then takes as
//     many tickets as are left from the counter, guarded by the quantity, the sales window
//     and the event's recorded cancellation, under the counter row's lock. A sold-out type
//     can never sell one more — whatever the batches, whatever the number of replicas — and
//     a committed ticket never lacks its message. A batch that straddles sold-out sells its
//     first purchases and answers the rest sold_out.
//   - A type's max_per_user is enforced by the same statement: for a limited type it locks
//     the buyers' rows of ticket_type_buyers (the per-user counters, in user id order) before
//     the type's counter, and keeps each buyer's first (limit - bought) purchases of the
//     batch; the others answer purchase_limit_reached. One buyer's purchases in one batch, in
//     several, and on several replicas are counted against one limit.
//   - A transfer (transfer.go) is an UPDATE of the old ticket guarded by its holder and
//     status = 'active', the recipient's new ticket and ticket.transferred in one
//     transaction: of concurrent transfers of one ticket one wins.
//   - Check-in is an UPDATE guarded by status = 'active', with ticket.checkin in the outbox in
//     the same transaction: of any number of concurrent check-ins one wins.
//   - The Idempotency-Key record's primary key makes concurrent retries end with one ticket:
//     a request whose key is already recorded is answered from the record before it joins a
//     batch, and of two with one key in flight at once (in one batch or two, on one replica
//     or two) the second loses the key and is answered with the first one's ticket.
//
// Messages are keyed by event id (as every Sbor message is keyed by its event), so one
// event's purchases and check-ins reach consumers in order and a ticket's check-in never
// overtakes its purchase.
//
// The event service is asked (GET /internal/events/{id}, 2 s timeout) whether an event is
// published and who owns it when a type is created; its organizer and title are copied onto
// the type (a published event's no longer change), so validation, check-in and the attendee
// list decide locally. A cancellation recorded from event.cancelled refuses purchases and new
// types without asking the event service.
//
// Purchases ask through two caches (cache.go). A type is loaded once (it never changes but
// for its counter) and remembered sold out once seen so. The event's status is cached: a
// "published" answer is trusted for Options.EventStatusTTL (1 s by default) and renewed in
// the background once it is half as old, so purchases under traffic never wait for the
// event service; "cancelled" is trusted for good. The window this opens on a cancellation,
// exactly:
//
//   - Once the cancellation is recorded in this service's database (the event.cancelled
//     consumer of any replica committed it), no purchase succeeds on any replica: the
//     consumer's transaction sets event_cancelled_at on every counter row of the event, and
//     the purchase statement checks it under the row's lock, whatever a replica's cache says.
//     The recording replica also marks the event cancelled in its cache at once; another
//     replica learns it from its first refused batch.
//   - Between the cancellation's commit in the event service and its recording here, a
//     purchase can still succeed if its replica fetched "published" less than the TTL
//     before the purchase's check (plus the time its batch takes: at most BatchWait and one
//     statement). So purchases succeed for at most min(TTL + one batch, time until
//     recorded) after the cancellation commits. (Asking the event service on every purchase
//     narrowed this to the time between a purchase's check and its commit, at the cost of a
//     call per purchase.)
//   - Every ticket sold in that window is cancelled when the cancellation is recorded (the
//     same transaction, ordered after the sale by the counter row's lock), so no event ever
//     keeps an active ticket once its cancellation was handled; the buyer is notified of the
//     purchase and then of the cancellation.
//
// TestEventStatusCacheWindow pins each of these down.
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
	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// Source is the CloudEvents source of every message this service publishes.
const Source = "sbor/ticket"

// Topics are the topics this service publishes to (before the topic prefix).
var Topics = []string{cloudevent.TypeTicketPurchased, cloudevent.TypeTicketCheckin, cloudevent.TypeTicketTransferred}

// Events is what the ticket service asks of the event service.
type Events interface {
	Event(ctx context.Context, id uuid.UUID) (EventInfo, error)
}

// Options tune the purchase path; the zero value means the defaults.
type Options struct {
	// EventStatusTTL is how long the event service's "published" is trusted before it is
	// asked again (DefaultEventStatusTTL when 0; negative: asked on every purchase). See the
	// package documentation for what it means for a cancellation.
	EventStatusTTL time.Duration
	// BatchSize caps the purchases grouped into one statement (DefaultBatchSize when 0;
	// 1 turns grouping off).
	BatchSize int
	// BatchWait is how long a purchase waits for others to join its batch when a batch slot
	// is free (DefaultBatchWait when 0; negative: no wait).
	BatchWait time.Duration
	// BatchesInFlight caps the batches of one type running at once in this replica
	// (DefaultBatchesInFlight when 0).
	BatchesInFlight int
}

// DefaultEventStatusTTL is how long a "published" answer of the event service is trusted.
const DefaultEventStatusTTL = time.Second

func (o Options) withDefaults() Options {
	if o.EventStatusTTL == 0 {
		o.EventStatusTTL = DefaultEventStatusTTL
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	switch {
	case o.BatchWait == 0:
		o.BatchWait = DefaultBatchWait
	case o.BatchWait < 0:
		o.BatchWait = 0
	}
	if o.BatchesInFlight <= 0 {
		o.BatchesInFlight = DefaultBatchesInFlight
	}
	return o
}

// Core holds the ticket service's rules.
type Core struct {
	store   *Store
	events  Events
	now     func() time.Time
	types   *typeCache
	status  *eventStatusCache
	batches *batcher
	// keys caches the events' signing keys; scanAccess says who may scan an event (signing.go).
	keys       *keyCache
	scanAccess ScanAccess
}

// NewCore returns the business layer with the default options.
func NewCore(store *Store, events Events) *Core { return NewCoreWith(store, events, Options{}) }

// NewCoreWith returns the business layer with opts.
func NewCoreWith(store *Store, events Events, opts Options) *Core {
	opts = opts.withDefaults()
	c := &Core{store: store, events: events, now: time.Now, keys: newKeyCache(store), scanAccess: storeScanAccess{store}}
	c.types = newTypeCache(func(ctx context.Context, _, id uuid.UUID) (TicketType, error) { return store.ticketTypeByID(ctx, id) })
	c.status = newEventStatusCache(opts.EventStatusTTL, func() time.Time { return c.now() }, events.Event)
	c.batches = newBatcher(opts.BatchSize, opts.BatchWait, opts.BatchesInFlight, c.executeBatch)
	return c
}

var (
	errNotOwner          = errs.New(errs.Forbidden, "not_owner", "only the event's organizer may do this")
	errEventNotPublished = errs.New(errs.Conflict, "event_not_published", "the event is not published")
	errOutsideWindow     = errs.New(errs.Conflict, "outside_sales_window", "tickets of this type are not on sale now")
	errSoldOut           = errs.New(errs.Conflict, "sold_out", "no tickets of this type are left")
	errPurchaseLimit     = errs.New(errs.Conflict, "purchase_limit_reached", "you have bought as many tickets of this type as one person may")
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
		SalesStart: v.SalesStart, SalesEnd: v.SalesEnd, MaxPerUser: v.MaxPerUser,
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
//
// The checks before the batch answer the common refusals without touching the counter: a
// replayed Idempotency-Key, an unknown type, a type seen sold out, a closed sales window, an
// event that is not published or is cancelled. The purchase statement checks the counter,
// the window and the recorded cancellation again, atomically.
func (c *Core) Purchase(ctx context.Context, caller identity.Identity, p Purchase, render func(Ticket) ([]byte, error)) (result PurchaseResult, err error) {
	defer func() { countPurchase(result, err) }()
	if p.IdempotencyKey != "" {
		if !validIdempotencyKey(p.IdempotencyKey) {
			return PurchaseResult{}, errBadKey
		}
		if res, ok, err := c.replayRecord(ctx, caller, p); ok || err != nil {
			return res, err
		}
	}
	ct, err := c.types.get(ctx, p.EventID, p.TicketTypeID)
	if err != nil {
		return PurchaseResult{}, err
	}
	if err := c.refusal(ct); err != nil {
		return PurchaseResult{}, err
	}
	if err := c.checkPublished(ctx, p.EventID); err != nil {
		return PurchaseResult{}, err
	}

	for attempt := 1; ; attempt++ {
		np, err := c.preparePurchase(ctx, caller, p, ct.tt, render)
		if err != nil {
			return PurchaseResult{}, err
		}
		w := &waiter{ctx: ctx, np: np, result: make(chan batchResult, 1)}
		c.batches.submit(ct, w)
		var res batchResult
		select {
		case res = <-w.result:
		case <-ctx.Done():
			return PurchaseResult{}, ctx.Err()
		}
		switch {
		case res.sold:
			return PurchaseResult{Ticket: np.Ticket, Response: np.Response}, nil
		case errors.Is(res.err, errCodeCollision) && attempt < 3:
			continue
		}
		if p.IdempotencyKey != "" && errs.Is(res.err, errs.Conflict) {
			// Another request with the same key may have won it: answer with its ticket.
			if replayed, ok, err := c.replayRecord(ctx, caller, p); ok || err != nil {
				return replayed, err
			}
		}
		return PurchaseResult{}, res.err
	}
}

// replayRecord answers a purchase whose Idempotency-Key is already recorded; ok is false
// when it is not.
func (c *Core) replayRecord(ctx context.Context, caller identity.Identity, p Purchase) (PurchaseResult, bool, error) {
	rec, ok, err := c.store.PurchaseRecord(ctx, caller.UserID, p.IdempotencyKey)
	if err != nil || !ok {
		return PurchaseResult{}, false, err
	}
	res, err := replay(rec, p)
	return res, true, err
}

// checkPublished asks whether the event is on sale: the event service has the last word on
// its status (it closes the window between a cancellation's commit there and its message
// reaching this service), through the status cache. When the event service cannot answer,
// a cancellation recorded here still answers.
func (c *Core) checkPublished(ctx context.Context, eventID uuid.UUID) error {
	status, err := c.status.status(ctx, eventID)
	if err != nil {
		if _, cancelled, lerr := c.store.CancelledEvent(ctx, eventID); lerr == nil && cancelled {
			c.status.cancel(eventID)
			return errEventCancelled
		}
		return err
	}
	switch status {
	case EventPublished:
		return nil
	case EventCancelled:
		return errEventCancelled
	default:
		return errEventNotPublished
	}
}

// executeBatch runs a batch of purchases of one type and answers each waiter. It reports
// whether the batch straddled sold-out (sold some, not all, for want of tickets).
func (c *Core) executeBatch(ct *cachedType, ws []*waiter) (straddled bool) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	ps := make([]newPurchase, len(ws))
	for i, w := range ws {
		ps[i] = w.np
	}
	sold, overLimit, err := c.store.PurchaseBatch(ctx, ct.tt, ps)
	switch {
	case errors.Is(err, errNotPurchased):
		// Say why, once for the whole batch (this read only picks the error).
		err = c.refusedBecause(ctx, ct)
	case err == nil:
		got := make(map[uuid.UUID]bool, len(sold))
		for _, id := range sold {
			got[id] = true
		}
		limited := make(map[uuid.UUID]bool, len(overLimit))
		for _, id := range overLimit {
			limited[id] = true
		}
		for _, w := range ws {
			if got[w.np.Ticket.ID] {
				w.result <- batchResult{sold: true}
				continue
			}
			if limited[w.np.Ticket.ID] {
				w.result <- batchResult{err: errPurchaseLimit}
				continue
			}
			// Not sold: a keyed purchase may have lost its key (Purchase replays it); a
			// purchase without a key was not sold only because the tickets ran out.
			if w.np.Key == "" {
				straddled = true
			}
			w.result <- batchResult{err: errSoldOut}
		}
		if straddled {
			markSoldOut(ct)
		}
		return straddled
	}
	for _, w := range ws {
		w.result <- batchResult{err: err}
	}
	return false
}

// refusedBecause reads the type again after the counter refused a batch, says why, and
// remembers a sell-out or a cancellation for the purchases to come.
func (c *Core) refusedBecause(ctx context.Context, ct *cachedType) error {
	tt, err := c.store.TicketType(ctx, ct.tt.EventID, ct.tt.ID)
	if err != nil {
		return err
	}
	if tt.Sold >= tt.Quantity {
		markSoldOut(ct)
	}
	if tt.EventCancelledAt != nil {
		c.status.cancel(tt.EventID)
		return errEventCancelled
	}
	if !tt.OnSale(c.now()) {
		return errOutsideWindow
	}
	return errSoldOut
}

// refusal says why the cached type cannot be bought now, or nil if it may be.
func (c *Core) refusal(ct *cachedType) error {
	switch {
	case ct.tt.EventCancelledAt != nil:
		return errEventCancelled
	case !ct.tt.OnSale(c.now()):
		return errOutsideWindow
	case ct.soldOut.Load():
		return errSoldOut
	}
	return nil
}

// EventCancelled is called once this service recorded an event's cancellation: purchases
// of it are refused from now on without asking anyone.
func (c *Core) EventCancelled(eventID uuid.UUID) { c.status.cancel(eventID) }

// preparePurchase builds the ticket, its message and its response before the purchase
// statement runs, so the statement holds the counter's lock for nothing but itself. The
// message carries the request's trace context in the event itself: the statement writes the
// outbox rows without headers.
func (c *Core) preparePurchase(ctx context.Context, caller identity.Identity, p Purchase, tt TicketType, render func(Ticket) ([]byte, error)) (newPurchase, error) {
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
	ev.TraceParent, ev.TraceState = tracing.TraceParent(ctx)
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
	if t, err = c.SignTicket(ctx, t); err != nil {
		return nil, err
	}
	return qrPNG(t.SignedCode)
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

// ticketForOrganizer finds the ticket with a code for the organizer of its event or its door
// staff: a malformed or unknown code is NotFound, anyone else's ticket Forbidden.
func (c *Core) ticketForOrganizer(ctx context.Context, caller identity.Identity, rawCode string) (Ticket, error) {
	code, err := c.canonicalCode(ctx, caller, rawCode)
	if err != nil {
		return Ticket{}, err
	}
	t, err := c.store.ByCode(ctx, code)
	if err != nil {
		return Ticket{}, err
	}
	if err := c.mayScan(ctx, caller, t); err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// Validate says whether the ticket with a code may get in, without changing it.
func (c *Core) Validate(ctx context.Context, caller identity.Identity, rawCode string) (Validation, error) {
	t, err := c.ticketForOrganizer(ctx, caller, rawCode)
	if errors.Is(err, errBadSignature) {
		return Validation{Status: StatusInvalid, Reason: ReasonBadSignature}, nil
	}
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
	case StatusTransferred:
		return Validation{Status: t.Status, Reason: "transferred"}
	default:
		return Validation{Status: t.Status, Reason: "ticket_cancelled"}
	}
}

// CheckIn lets the ticket with a code in: active → used, once.
func (c *Core) CheckIn(ctx context.Context, caller identity.Identity, rawCode string) (ticket Ticket, err error) {
	defer func() { countCheckIn(err) }()
	code, err := c.canonicalCode(ctx, caller, rawCode)
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
	if err := c.mayScan(ctx, caller, t); err != nil {
		return Ticket{}, err
	}
	switch t.Status {
	case StatusUsed:
		return Ticket{}, errAlreadyUsed
	case StatusCancelled:
		return Ticket{}, errTicketCancelled
	case StatusTransferred:
		return Ticket{}, errTicketTransferred
	}
	return Ticket{}, fmt.Errorf("ticket %s is %s but could not be checked in", t.ID, t.Status)
}
