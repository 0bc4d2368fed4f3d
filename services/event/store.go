package event

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
)

// Store is the event service's PostgreSQL storage.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var errNotFound = errs.New(errs.NotFound, "event_not_found", "no such event")

// errGuardFailed means a guarded UPDATE matched no row: the event is missing, someone else's,
// or not in the state the transition starts from. The caller reads the row to say which.
var errGuardFailed = errors.New("event not in the expected state")

// Announce makes the outbox message for an event as a transition left it.
type Announce func(Event) (outbox.Message, error)

// eventRow is the events table's shape.
type eventRow struct {
	ID             uuid.UUID  `db:"id"`
	OrganizerID    uuid.UUID  `db:"organizer_id"`
	Title          string     `db:"title"`
	Description    string     `db:"description"`
	Venue          string     `db:"venue"`
	StartsAt       time.Time  `db:"starts_at"`
	EndsAt         time.Time  `db:"ends_at"`
	Status         string     `db:"status"`
	Version        int64      `db:"version"`
	CreatedAt      time.Time  `db:"created_at"`
	UpdatedAt      time.Time  `db:"updated_at"`
	PublishedAt    *time.Time `db:"published_at"`
	CancelledAt    *time.Time `db:"cancelled_at"`
	ReminderSentAt *time.Time `db:"reminder_sent_at"`
}

func (r eventRow) toEvent() Event {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	return Event{
		ID: r.ID, OrganizerID: r.OrganizerID, Title: r.Title, Description: r.Description, Venue: r.Venue,
		StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(), Status: Status(r.Status), Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		PublishedAt: utc(r.PublishedAt), CancelledAt: utc(r.CancelledAt), ReminderSentAt: utc(r.ReminderSentAt),
	}
}

const eventColumns = `id, organizer_id, title, description, venue, starts_at, ends_at, status, version,
	created_at, updated_at, published_at, cancelled_at, reminder_sent_at`

// querier is what both the pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func queryEvents(ctx context.Context, q querier, sql string, args ...any) ([]Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[eventRow])
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(rs))
	for i, r := range rs {
		out[i] = r.toEvent()
	}
	return out, nil
}

// queryEvent returns the one row sql returns, or pgx.ErrNoRows.
func queryEvent(ctx context.Context, q querier, sql string, args ...any) (Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return Event{}, err
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[eventRow])
	if err != nil {
		return Event{}, err
	}
	return r.toEvent(), nil
}

// Create inserts a draft.
func (s *Store) Create(ctx context.Context, id, organizer uuid.UUID, ne NewEvent) (Event, error) {
	ev, err := queryEvent(ctx, s.pool, `
		INSERT INTO events (id, organizer_id, title, description, venue, starts_at, ends_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+eventColumns,
		id, organizer, ne.Title, ne.Description, ne.Venue, ne.StartsAt, ne.EndsAt)
	return ev, db.Unavailable(err)
}

// ByID returns an event in any status.
func (s *Store) ByID(ctx context.Context, id uuid.UUID) (Event, error) {
	ev, err := queryEvent(ctx, s.pool, `SELECT `+eventColumns+` FROM events WHERE id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, errNotFound
	}
	return ev, db.Unavailable(err)
}

// ListPublished returns up to limit published events after the cursor, by (starts_at, id).
func (s *Store) ListPublished(ctx context.Context, after *Cursor, limit int) ([]Event, error) {
	var evs []Event
	var err error
	if after == nil {
		evs, err = queryEvents(ctx, s.pool, `SELECT `+eventColumns+` FROM events
			WHERE status = 'published' ORDER BY starts_at, id LIMIT $1`, limit)
	} else {
		evs, err = queryEvents(ctx, s.pool, `SELECT `+eventColumns+` FROM events
			WHERE status = 'published' AND (starts_at, id) > ($1, $2) ORDER BY starts_at, id LIMIT $3`,
			after.StartsAt, after.ID, limit)
	}
	return evs, db.Unavailable(err)
}

// ListByOrganizer returns up to limit of an organizer's events of every status after the
// cursor, by (starts_at, id).
func (s *Store) ListByOrganizer(ctx context.Context, organizer uuid.UUID, after *Cursor, limit int) ([]Event, error) {
	var evs []Event
	var err error
	if after == nil {
		evs, err = queryEvents(ctx, s.pool, `SELECT `+eventColumns+` FROM events
			WHERE organizer_id = $1 ORDER BY starts_at, id LIMIT $2`, organizer, limit)
	} else {
		evs, err = queryEvents(ctx, s.pool, `SELECT `+eventColumns+` FROM events
			WHERE organizer_id = $1 AND (starts_at, id) > ($2, $3) ORDER BY starts_at, id LIMIT $4`,
			organizer, after.StartsAt, after.ID, limit)
	}
	return evs, db.Unavailable(err)
}

// transition runs one guarded UPDATE … RETURNING and, in the same transaction, writes the
// message announce makes of the result to the outbox. A guard that matches no row returns
// errGuardFailed and writes nothing.
func (s *Store) transition(ctx context.Context, announce Announce, sql string, args ...any) (Event, error) {
	var ev Event
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		ev, err = queryEvent(ctx, tx, sql, args...)
		if errors.Is(err, pgx.ErrNoRows) {
			return errGuardFailed
		}
		if err != nil {
			return err
		}
		msg, err := announce(ev)
		if err != nil {
			return err
		}
		return outbox.Add(ctx, tx, msg)
	})
	if errors.Is(err, errGuardFailed) {
		return Event{}, errGuardFailed
	}
	return ev, db.Unavailable(err)
}

// UpdateDraft replaces a draft's fields, if the event is still a draft of organizer.
func (s *Store) UpdateDraft(ctx context.Context, id, organizer uuid.UUID, ne NewEvent, announce Announce) (Event, error) {
	return s.transition(ctx, announce, `
		UPDATE events SET title = $3, description = $4, venue = $5, starts_at = $6, ends_at = $7,
			version = version + 1, updated_at = now()
		WHERE id = $1 AND organizer_id = $2 AND status = 'draft'
		RETURNING `+eventColumns,
		id, organizer, ne.Title, ne.Description, ne.Venue, ne.StartsAt, ne.EndsAt)
}

// Publish makes a draft of organizer that has not started yet published.
func (s *Store) Publish(ctx context.Context, id, organizer uuid.UUID, announce Announce) (Event, error) {
	return s.transition(ctx, announce, `
		UPDATE events SET status = 'published', published_at = now(), version = version + 1, updated_at = now()
		WHERE id = $1 AND organizer_id = $2 AND status = 'draft' AND starts_at > now()
		RETURNING `+eventColumns, id, organizer)
}

// Cancel cancels a draft or published event of organizer.
func (s *Store) Cancel(ctx context.Context, id, organizer uuid.UUID, announce Announce) (Event, error) {
	return s.transition(ctx, announce, `
		UPDATE events SET status = 'cancelled', cancelled_at = now(), version = version + 1, updated_at = now()
		WHERE id = $1 AND organizer_id = $2 AND status IN ('draft', 'published')
		RETURNING `+eventColumns, id, organizer)
}

// MarkReminded records that a published event's reminder is sent, if it was not yet.
func (s *Store) MarkReminded(ctx context.Context, id uuid.UUID, announce Announce) (Event, error) {
	return s.transition(ctx, announce, `
		UPDATE events SET reminder_sent_at = now(), version = version + 1, updated_at = now()
		WHERE id = $1 AND status = 'published' AND reminder_sent_at IS NULL
		RETURNING `+eventColumns, id)
}

// MarkDueReminded records the reminder of up to limit published events that start within
// lead from now, have not started and have had no reminder, and writes their messages to the
// outbox in the same transaction. Rows another replica is reminding right now are skipped,
// and the guard is the same as MarkReminded's, so no event is reminded twice.
func (s *Store) MarkDueReminded(ctx context.Context, lead time.Duration, limit int, announce Announce) ([]Event, error) {
	var evs []Event
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		evs, err = queryEvents(ctx, tx, `
			UPDATE events SET reminder_sent_at = now(), version = version + 1, updated_at = now()
			WHERE id IN (
				SELECT id FROM events
				WHERE status = 'published' AND reminder_sent_at IS NULL
					AND starts_at > now() AND starts_at <= now() + make_interval(secs => $1)
				ORDER BY starts_at, id LIMIT $2
				FOR UPDATE SKIP LOCKED)
			AND status = 'published' AND reminder_sent_at IS NULL
			RETURNING `+eventColumns, lead.Seconds(), limit)
		if err != nil || len(evs) == 0 {
			return err
		}
		msgs := make([]outbox.Message, len(evs))
		for i, ev := range evs {
			if msgs[i], err = announce(ev); err != nil {
				return err
			}
		}
		return outbox.Add(ctx, tx, msgs...)
	})
	if err != nil {
		return nil, db.Unavailable(err)
	}
	return evs, nil
}
