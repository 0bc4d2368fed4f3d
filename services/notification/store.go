package notification

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// Store is the notification service's PostgreSQL storage.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var errNotFound = errs.New(errs.NotFound, "notification_not_found", "no such notification")

// notificationRow is the notifications table's shape.
type notificationRow struct {
	ID        uuid.UUID  `db:"id"`
	UserID    uuid.UUID  `db:"user_id"`
	Type      string     `db:"type"`
	Title     string     `db:"title"`
	Body      string     `db:"body"`
	EventID   uuid.UUID  `db:"event_id"`
	TicketID  *uuid.UUID `db:"ticket_id"`
	SourceID  string     `db:"source_id"`
	CreatedAt time.Time  `db:"created_at"`
	ReadAt    *time.Time `db:"read_at"`
}

func (r notificationRow) toNotification() Notification {
	return Notification{
		ID: r.ID, UserID: r.UserID, Type: Type(r.Type), Title: r.Title, Body: r.Body,
		EventID: r.EventID, TicketID: r.TicketID, SourceID: r.SourceID, CreatedAt: r.CreatedAt, ReadAt: r.ReadAt,
	}
}

const notificationColumns = "id, user_id, type, title, body, event_id, ticket_id, source_id, created_at, read_at"

// Insert stores notifications with one statement and returns how many were new. A
// notification whose (source_id, user_id, type) is already stored is skipped, in SQL, so
// redelivered messages and concurrent consumers never store one twice.
func (s *Store) Insert(ctx context.Context, ns []Notification) (int64, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	cols := toColumns(ns)
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO notifications (id, user_id, type, title, body, event_id, ticket_id, source_id)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::uuid[], $8::text[])
		ON CONFLICT ON CONSTRAINT notifications_source_user_type_key DO NOTHING`,
		cols.ids, cols.users, cols.types, cols.titles, cols.bodies, cols.events, cols.tickets, cols.sources)
	if err != nil {
		return 0, db.Unavailable(err)
	}
	return tag.RowsAffected(), nil
}

// InsertNew is Insert that returns the ids of the notifications that were new.
func (s *Store) InsertNew(ctx context.Context, ns []Notification) ([]uuid.UUID, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	cols := toColumns(ns)
	rows, err := s.pool.Query(ctx, `
		INSERT INTO notifications (id, user_id, type, title, body, event_id, ticket_id, source_id)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::uuid[], $8::text[])
		ON CONFLICT ON CONSTRAINT notifications_source_user_type_key DO NOTHING
		RETURNING id`,
		cols.ids, cols.users, cols.types, cols.titles, cols.bodies, cols.events, cols.tickets, cols.sources)
	if err != nil {
		return nil, db.Unavailable(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, db.Unavailable(err)
	}
	return ids, nil
}

// notificationArrays are notifications as one array per column, for unnest.
type notificationArrays struct {
	ids, users, events []uuid.UUID
	tickets            []*uuid.UUID
	types, titles      []string
	bodies, sources    []string
}

func toColumns(ns []Notification) notificationArrays {
	c := notificationArrays{
		ids: make([]uuid.UUID, len(ns)), users: make([]uuid.UUID, len(ns)), events: make([]uuid.UUID, len(ns)),
		tickets: make([]*uuid.UUID, len(ns)), types: make([]string, len(ns)), titles: make([]string, len(ns)),
		bodies: make([]string, len(ns)), sources: make([]string, len(ns)),
	}
	for i, n := range ns {
		c.ids[i], c.users[i], c.types[i], c.titles[i], c.bodies[i] = n.ID, n.UserID, string(n.Type), n.Title, n.Body
		c.events[i], c.tickets[i], c.sources[i] = n.EventID, n.TicketID, n.SourceID
	}
	return c
}

// List returns up to limit of a user's notifications, newest first, after the cursor
// position if one is given.
func (s *Store) List(ctx context.Context, userID uuid.UUID, after *listCursor, limit int) ([]Notification, error) {
	var rows pgx.Rows
	var err error
	if after == nil {
		rows, err = s.pool.Query(ctx, `SELECT `+notificationColumns+` FROM notifications
			WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, userID, limit)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+notificationColumns+` FROM notifications
			WHERE user_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4`,
			userID, after.CreatedAt, after.ID, limit)
	}
	if err != nil {
		return nil, db.Unavailable(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByName[notificationRow])
	if err != nil {
		return nil, db.Unavailable(err)
	}
	out := make([]Notification, len(found))
	for i, r := range found {
		out[i] = r.toNotification()
	}
	return out, nil
}

// MarkRead sets a user's notification read, keeping the first read time, and returns it.
// Another user's notification is not found.
func (s *Store) MarkRead(ctx context.Context, userID, id uuid.UUID) (Notification, error) {
	rows, err := s.pool.Query(ctx, `
		UPDATE notifications SET read_at = coalesce(read_at, now())
		WHERE id = $1 AND user_id = $2 RETURNING `+notificationColumns, id, userID)
	if err != nil {
		return Notification{}, db.Unavailable(err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[notificationRow])
	if errors.Is(err, pgx.ErrNoRows) {
		return Notification{}, errNotFound
	}
	if err != nil {
		return Notification{}, db.Unavailable(err)
	}
	return r.toNotification(), nil
}

// UnreadCount counts a user's unread notifications.
func (s *Store) UnreadCount(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL`, userID).Scan(&n)
	return n, db.Unavailable(err)
}

// DeadLetter is a consumed message that could never be handled.
type DeadLetter struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Payload   []byte
	Error     string
}

// AddDeadLetter parks a message; parking the same position again is a no-op.
func (s *Store) AddDeadLetter(ctx context.Context, d DeadLetter) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO dead_letters (topic, "partition", "offset", key, payload, error) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT ON CONSTRAINT dead_letters_position_key DO NOTHING`,
		d.Topic, d.Partition, d.Offset, d.Key, d.Payload, d.Error)
	return db.Unavailable(err)
}
