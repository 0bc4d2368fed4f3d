package ticket

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
)

// Store is the ticket service's PostgreSQL storage.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var (
	errTypeNotFound   = errs.New(errs.NotFound, "ticket_type_not_found", "the event has no such ticket type")
	errTicketNotFound = errs.New(errs.NotFound, "ticket_not_found", "no such ticket")
	errDuplicateType  = errs.New(errs.Conflict, "duplicate_ticket_type", "the event already has a ticket type of this kind")
	errEventCancelled = errs.New(errs.Conflict, "event_cancelled", "the event is cancelled")
)

// ticketTypeRow is the ticket_types table's shape.
type ticketTypeRow struct {
	ID               uuid.UUID  `db:"id"`
	EventID          uuid.UUID  `db:"event_id"`
	OrganizerID      uuid.UUID  `db:"organizer_id"`
	EventTitle       string     `db:"event_title"`
	Type             string     `db:"type"`
	PriceCents       int64      `db:"price_cents"`
	Currency         string     `db:"currency"`
	Quantity         int        `db:"quantity"`
	Sold             int        `db:"sold"`
	SalesStart       time.Time  `db:"sales_start"`
	SalesEnd         time.Time  `db:"sales_end"`
	MaxPerUser       *int       `db:"max_per_user"`
	EventCancelledAt *time.Time `db:"event_cancelled_at"`
	CreatedAt        time.Time  `db:"created_at"`
}

func (r ticketTypeRow) toTicketType() TicketType {
	return TicketType{
		ID: r.ID, EventID: r.EventID, OrganizerID: r.OrganizerID, EventTitle: r.EventTitle,
		Kind: Kind(r.Type), PriceCents: r.PriceCents, Currency: r.Currency, Quantity: r.Quantity, Sold: r.Sold,
		SalesStart: r.SalesStart.UTC(), SalesEnd: r.SalesEnd.UTC(), MaxPerUser: r.MaxPerUser, EventCancelledAt: utcPtr(r.EventCancelledAt),
		CreatedAt: r.CreatedAt.UTC(),
	}
}

const ticketTypeColumns = `id, event_id, organizer_id, event_title, type, price_cents, currency, quantity, sold,
	sales_start, sales_end, max_per_user, event_cancelled_at, created_at`

// ticketRow is the tickets table's shape.
type ticketRow struct {
	ID           uuid.UUID  `db:"id"`
	Code         string     `db:"code"`
	EventID      uuid.UUID  `db:"event_id"`
	TicketTypeID uuid.UUID  `db:"ticket_type_id"`
	UserID       uuid.UUID  `db:"user_id"`
	OrganizerID  uuid.UUID  `db:"organizer_id"`
	Status       string     `db:"status"`
	PurchasedAt  time.Time  `db:"purchased_at"`
	CheckedInAt  *time.Time `db:"checked_in_at"`
	CancelledAt  *time.Time `db:"cancelled_at"`
	// Transfers (migrations/00005).
	TransferredAt   *time.Time `db:"transferred_at"`
	TransferredFrom *uuid.UUID `db:"transferred_from"`
}

func (r ticketRow) toTicket() Ticket {
	return Ticket{
		ID: r.ID, Code: r.Code, EventID: r.EventID, TicketTypeID: r.TicketTypeID, UserID: r.UserID,
		OrganizerID: r.OrganizerID, Status: Status(r.Status), PurchasedAt: r.PurchasedAt.UTC(),
		CheckedInAt: utcPtr(r.CheckedInAt), CancelledAt: utcPtr(r.CancelledAt),
		TransferredAt: utcPtr(r.TransferredAt), TransferredFrom: r.TransferredFrom,
	}
}

const ticketColumns = `id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at, checked_in_at, cancelled_at,
	transferred_at, transferred_from`

// storeError passes business errors through and maps the rest with db.Unavailable.
func storeError(err error) error {
	if _, ok := errs.As(err); ok {
		return err
	}
	return db.Unavailable(err)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// eventLockSQL serialises, per event, creating a ticket type with recording the event's
// cancellation, so a type can never be created unseen by a cancellation that commits at the
// same moment.
const eventLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('sbor-ticket-event:' || $1::text, 0))`

// CreateTicketType inserts tt unless the event's cancellation has been recorded.
func (s *Store) CreateTicketType(ctx context.Context, tt TicketType) (TicketType, error) {
	var created TicketType
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, eventLockSQL, tt.EventID); err != nil {
			return err
		}
		var cancelled bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cancelled_events WHERE event_id = $1)`, tt.EventID).Scan(&cancelled); err != nil {
			return err
		}
		if cancelled {
			return errEventCancelled
		}
		// The event's signing key comes with its first type (keys_store.go).
		if err := createEventKeyTx(ctx, tx, tt.EventID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO ticket_types (id, event_id, organizer_id, event_title, type, price_cents, currency, quantity, sales_start, sales_end, max_per_user)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			RETURNING `+ticketTypeColumns,
			tt.ID, tt.EventID, tt.OrganizerID, tt.EventTitle, string(tt.Kind), tt.PriceCents, tt.Currency, tt.Quantity, tt.SalesStart, tt.SalesEnd, tt.MaxPerUser)
		if err != nil {
			return err
		}
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ticketTypeRow])
		if err != nil {
			return err
		}
		created = r.toTicketType()
		return nil
	})
	switch {
	case db.IsUniqueViolation(err, "ticket_types_event_type_key"):
		return TicketType{}, errDuplicateType
	case err != nil:
		return TicketType{}, storeError(err)
	}
	return created, nil
}

// TicketTypes lists an event's types, standard first.
func (s *Store) TicketTypes(ctx context.Context, eventID uuid.UUID) ([]TicketType, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ticketTypeColumns+` FROM ticket_types WHERE event_id = $1
		ORDER BY array_position(ARRAY['standard', 'vip', 'early_bird'], type), id`, eventID)
	if err != nil {
		return nil, db.Unavailable(err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[ticketTypeRow])
	if err != nil {
		return nil, db.Unavailable(err)
	}
	out := make([]TicketType, len(rs))
	for i, r := range rs {
		out[i] = r.toTicketType()
	}
	return out, nil
}

// TicketType returns the type id of event eventID.
func (s *Store) TicketType(ctx context.Context, eventID, id uuid.UUID) (TicketType, error) {
	tt, err := s.ticketTypeByID(ctx, id)
	if err == nil && tt.EventID != eventID {
		return TicketType{}, errTypeNotFound
	}
	return tt, err
}

// ticketTypeByID returns a type whatever its event (the type cache checks the event).
func (s *Store) ticketTypeByID(ctx context.Context, id uuid.UUID) (TicketType, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ticketTypeColumns+` FROM ticket_types WHERE id = $1`, id)
	if err != nil {
		return TicketType{}, db.Unavailable(err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ticketTypeRow])
	if errors.Is(err, pgx.ErrNoRows) {
		return TicketType{}, errTypeNotFound
	}
	if err != nil {
		return TicketType{}, db.Unavailable(err)
	}
	return r.toTicketType(), nil
}

// EventOwner is what this service knows locally of who owns an event.
type EventOwner struct {
	OrganizerID uuid.UUID
	Cancelled   bool
}

// EventOwner returns the organizer of an event from its ticket types or its recorded
// cancellation; ok is false when this service has never heard of the event.
func (s *Store) EventOwner(ctx context.Context, eventID uuid.UUID) (owner EventOwner, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `
		SELECT organizer_id, cancelled FROM (
			SELECT organizer_id, true AS cancelled, 0 AS rank FROM cancelled_events WHERE event_id = $1
			UNION ALL
			(SELECT organizer_id, event_cancelled_at IS NOT NULL, 1 FROM ticket_types WHERE event_id = $1 LIMIT 1)
		) known ORDER BY rank LIMIT 1`, eventID).Scan(&owner.OrganizerID, &owner.Cancelled)
	if errors.Is(err, pgx.ErrNoRows) {
		return EventOwner{}, false, nil
	}
	if err != nil {
		return EventOwner{}, false, db.Unavailable(err)
	}
	return owner, true, nil
}

// CancelledEvent returns the recorded cancellation of an event, if any.
func (s *Store) CancelledEvent(ctx context.Context, eventID uuid.UUID) (organizerID uuid.UUID, cancelled bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT organizer_id FROM cancelled_events WHERE event_id = $1`, eventID).Scan(&organizerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, db.Unavailable(err)
	}
	return organizerID, true, nil
}

// purchaseRecord is a stored Idempotency-Key record.
type purchaseRecord struct {
	RequestHash []byte
	TicketID    uuid.UUID
	Response    []byte
}

// PurchaseRecord returns the record of a user's earlier purchase with key.
func (s *Store) PurchaseRecord(ctx context.Context, userID uuid.UUID, key string) (purchaseRecord, bool, error) {
	var r purchaseRecord
	err := s.pool.QueryRow(ctx, `SELECT request_hash, ticket_id, response FROM purchase_requests WHERE user_id = $1 AND idempotency_key = $2`,
		userID, key).Scan(&r.RequestHash, &r.TicketID, &r.Response)
	if errors.Is(err, pgx.ErrNoRows) {
		return purchaseRecord{}, false, nil
	}
	if err != nil {
		return purchaseRecord{}, false, db.Unavailable(err)
	}
	return r, true, nil
}

// newPurchase is everything a purchase writes, prepared before the purchase statement runs.
type newPurchase struct {
	Ticket  Ticket
	Message outbox.Message
	// Idempotency record; Key is empty when the request had none.
	Key         string
	RequestHash []byte
	Response    []byte
}

// purchaseBatchSQL runs a batch of purchases of one type as one statement
// (purchase_tickets_limited, migrations/00005: purchase_tickets of 00002 with the purchase
// limit): one implicit transaction, one round trip, one commit. Nothing slow (a second round trip, Go code, a call to another service) runs while
// the counter row is locked, and the lock is taken by the last statements of the function,
// so it is held only from the counter update to the commit.
const purchaseBatchSQL = `SELECT sold, over_limit FROM purchase_tickets_limited($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

// purchaseRefused is the SQLSTATE purchase_tickets raises when the counter refuses.
const purchaseRefused = "SB409"

// errNotPurchased means the purchase statement found the counter closed (sold out, sales
// window shut, event cancelled); the caller reads the type again to say which.
var errNotPurchased = errors.New("no ticket taken")

// errCodeCollision means a random code was already taken (with 130 random bits, about one
// chance in 10^30 even after a billion tickets); the purchases draw new ones.
var errCodeCollision = errors.New("ticket code collision")

// PurchaseBatch runs purchases of one type, tt, as one statement and returns the ids of the
// tickets sold and of the purchases refused because their buyer reached the type's
// max_per_user (see purchase_tickets_limited for why others may not be sold). Every purchase
// must be of tt.
func (s *Store) PurchaseBatch(ctx context.Context, tt TicketType, ps []newPurchase) (sold, overLimit []uuid.UUID, err error) {
	n := len(ps)
	ids, users := make([]uuid.UUID, n), make([]uuid.UUID, n)
	codes, keys := make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	payloads, hashes, responses := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	for i, p := range ps {
		t := p.Ticket
		ids[i], codes[i], users[i], ats[i] = t.ID, t.Code, t.UserID, t.PurchasedAt
		payloads[i] = p.Message.Payload
		if p.Key != "" {
			keys[i], hashes[i], responses[i] = p.Key, p.RequestHash, p.Response
		}
	}
	err = s.pool.QueryRow(ctx, purchaseBatchSQL, tt.ID, tt.EventID, tt.OrganizerID,
		ids, codes, users, ats, cloudevent.TypeTicketPurchased, tt.EventID.String(), payloads,
		keys, hashes, responses).Scan(&sold, &overLimit)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == purchaseRefused:
		return nil, nil, errNotPurchased
	case db.IsUniqueViolation(err, "tickets_code_key"):
		return nil, nil, errCodeCollision
	case err != nil:
		return nil, nil, db.Unavailable(err)
	}
	return sold, overLimit, nil
}

func (s *Store) queryTickets(ctx context.Context, sql string, args ...any) ([]Ticket, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, db.Unavailable(err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[ticketRow])
	if err != nil {
		return nil, db.Unavailable(err)
	}
	out := make([]Ticket, len(rs))
	for i, r := range rs {
		out[i] = r.toTicket()
	}
	return out, nil
}

func (s *Store) queryTicket(ctx context.Context, sql string, args ...any) (Ticket, error) {
	ts, err := s.queryTickets(ctx, sql, args...)
	if err != nil {
		return Ticket{}, err
	}
	if len(ts) == 0 {
		return Ticket{}, errTicketNotFound
	}
	return ts[0], nil
}

// ByID returns a ticket.
func (s *Store) ByID(ctx context.Context, id uuid.UUID) (Ticket, error) {
	return s.queryTicket(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = $1`, id)
}

// ByCode returns the ticket with a canonical code.
func (s *Store) ByCode(ctx context.Context, code string) (Ticket, error) {
	return s.queryTicket(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE code = $1`, code)
}

// UserTickets returns a page of a user's tickets, newest first; it fetches one more than the
// limit so the caller knows whether another page follows.
func (s *Store) UserTickets(ctx context.Context, userID uuid.UUID, pr PageRequest) ([]Ticket, error) {
	if pr.After != nil {
		return s.queryTickets(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
			userID, *pr.After, pr.Limit+1)
	}
	return s.queryTickets(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, userID, pr.Limit+1)
}

// EventTickets returns a page of an event's tickets in purchase order, of one status or of
// any (status ""); one more than the limit, as UserTickets.
func (s *Store) EventTickets(ctx context.Context, eventID uuid.UUID, status Status, pr PageRequest) ([]Ticket, error) {
	after := uuid.Nil
	if pr.After != nil {
		after = *pr.After
	}
	return s.queryTickets(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE event_id = $1 AND id > $2 AND ($3 = '' OR status = $3) ORDER BY id LIMIT $4`,
		eventID, after, string(status), pr.Limit+1)
}

// CheckIn marks the active ticket with code used and writes the message built by announce
// in the same transaction. The UPDATE is guarded by status = 'active', so of many concurrent
// check-ins of one code exactly one changes the row; the others find nothing to update and
// get the ticket as it is now, with checkedIn false. The caller must be the event's organizer
// or on its staff (migrations/00003) as the UPDATE sees the grants: a revocation committed
// before it refuses the check-in, with no cache in between.
func (s *Store) CheckIn(ctx context.Context, code string, organizerID uuid.UUID, at time.Time,
	announce func(t Ticket, kind Kind, eventTitle string) (outbox.Message, error)) (t Ticket, checkedIn bool, err error) {
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var r ticketRow
		var kind, title string
		err := tx.QueryRow(ctx, `
			UPDATE tickets t SET status = 'used', checked_in_at = $3
			FROM ticket_types tt
			WHERE t.code = $1 AND t.status = 'active' AND tt.id = t.ticket_type_id
			  AND (t.organizer_id = $2 OR EXISTS (SELECT 1 FROM event_staff s WHERE s.event_id = t.event_id AND s.user_id = $2))
			RETURNING t.id, t.code, t.event_id, t.ticket_type_id, t.user_id, t.organizer_id, t.status,
			          t.purchased_at, t.checked_in_at, t.cancelled_at, tt.type, tt.event_title`, code, organizerID, at).
			Scan(&r.ID, &r.Code, &r.EventID, &r.TicketTypeID, &r.UserID, &r.OrganizerID, &r.Status,
				&r.PurchasedAt, &r.CheckedInAt, &r.CancelledAt, &kind, &title)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		t, checkedIn = r.toTicket(), true
		msg, err := announce(t, Kind(kind), title)
		if err != nil {
			return err
		}
		return outbox.Add(ctx, tx, msg)
	})
	if err != nil {
		return Ticket{}, false, storeError(err)
	}
	if checkedIn {
		return t, true, nil
	}
	t, err = s.ByCode(ctx, code)
	return t, false, err
}

// CancelEvent records an event's cancellation and cancels its active tickets, in one
// transaction, idempotently: a second delivery of the same cancellation changes nothing.
// It returns how many tickets this call cancelled.
func (s *Store) CancelEvent(ctx context.Context, eventID, organizerID uuid.UUID, cancelledAt time.Time) (int64, error) {
	var n int64
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, eventLockSQL, eventID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cancelled_events (event_id, organizer_id, cancelled_at) VALUES ($1, $2, $3)
			ON CONFLICT (event_id) DO NOTHING`, eventID, organizerID, cancelledAt); err != nil {
			return err
		}
		// Locks every counter row of the event: a purchase holding one commits first and its
		// ticket is seen by the UPDATE of tickets below (a new snapshot per statement); a
		// purchase arriving later finds event_cancelled_at set and takes nothing.
		if _, err := tx.Exec(ctx, `UPDATE ticket_types SET event_cancelled_at = $2 WHERE event_id = $1 AND event_cancelled_at IS NULL`,
			eventID, cancelledAt); err != nil {
			return err
		}
		// Each cancelled ticket is revoked (migrations/00004): the event lock taken above
		// keeps this event's revocation_seq values committing in order.
		tag, err := tx.Exec(ctx, `UPDATE tickets SET status = 'cancelled', cancelled_at = now(),
			revoked_at = now(), revocation_seq = nextval('ticket_revocation_seq')
			WHERE event_id = $1 AND status = 'active'`, eventID)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return nil
	})
	return n, db.Unavailable(err)
}

// PruneIdempotency deletes Idempotency-Key records older than keep.
func (s *Store) PruneIdempotency(ctx context.Context, keep time.Duration) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM purchase_requests WHERE created_at < now() - make_interval(secs => $1)`, keep.Seconds())
	return err
}
