package ticket

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sbor-dev/sbor/internal/platform/db"
)

// SQL of door staff, the events a user may scan and live counts (migrations/00003).

// EventFacts is what this service records of a published event for staff and scanners.
type EventFacts struct {
	EventID     uuid.UUID
	OrganizerID uuid.UUID
	Title       string
	StartsAt    time.Time
}

// StaffMember is one grant of scanning rights.
type StaffMember struct {
	EventID   uuid.UUID
	UserID    uuid.UUID
	Email     string
	GrantedAt time.Time
	GrantedBy uuid.UUID
}

type staffRow struct {
	EventID   uuid.UUID `db:"event_id"`
	UserID    uuid.UUID `db:"user_id"`
	Email     string    `db:"email"`
	GrantedAt time.Time `db:"granted_at"`
	GrantedBy uuid.UUID `db:"granted_by"`
}

func (r staffRow) toStaffMember() StaffMember {
	return StaffMember{EventID: r.EventID, UserID: r.UserID, Email: r.Email, GrantedAt: r.GrantedAt.UTC(), GrantedBy: r.GrantedBy}
}

const staffColumns = `event_id, user_id, email, granted_at, granted_by`

// KnownOrganizer returns an event's organizer from what this service recorded of it (its
// facts, a ticket type or its cancellation); ok is false when it never heard of the event.
func (s *Store) KnownOrganizer(ctx context.Context, eventID uuid.UUID) (organizerID uuid.UUID, cancelled, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `
		SELECT organizer_id, EXISTS (SELECT 1 FROM cancelled_events WHERE event_id = $1) FROM (
			SELECT organizer_id FROM event_facts WHERE event_id = $1
			UNION ALL (SELECT organizer_id FROM ticket_types WHERE event_id = $1 LIMIT 1)
			UNION ALL SELECT organizer_id FROM cancelled_events WHERE event_id = $1
		) known LIMIT 1`, eventID).Scan(&organizerID, &cancelled)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, false, nil
	}
	if err != nil {
		return uuid.Nil, false, false, db.Unavailable(err)
	}
	return organizerID, cancelled, true, nil
}

// RecordEventFacts records a published event's facts; a second record changes nothing.
func (s *Store) RecordEventFacts(ctx context.Context, f EventFacts) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO event_facts (event_id, organizer_id, title, starts_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (event_id) DO NOTHING`, f.EventID, f.OrganizerID, f.Title, f.StartsAt)
	return db.Unavailable(err)
}

// GrantStaff records the event's facts, if new, and the grant, in one transaction; a member
// already granted keeps the first grant, and created is false.
func (s *Store) GrantStaff(ctx context.Context, f EventFacts, m StaffMember) (got StaffMember, created bool, err error) {
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO event_facts (event_id, organizer_id, title, starts_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (event_id) DO NOTHING`, f.EventID, f.OrganizerID, f.Title, f.StartsAt); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `INSERT INTO event_staff (`+staffColumns+`) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (event_id, user_id) DO NOTHING RETURNING `+staffColumns,
			m.EventID, m.UserID, m.Email, m.GrantedAt, m.GrantedBy)
		if err != nil {
			return err
		}
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[staffRow])
		if err == nil {
			got, created = r.toStaffMember(), true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Already granted (ON CONFLICT waited for a concurrent grant to commit): answer it.
		rows, err = tx.Query(ctx, `SELECT `+staffColumns+` FROM event_staff WHERE event_id = $1 AND user_id = $2`, m.EventID, m.UserID)
		if err != nil {
			return err
		}
		r, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[staffRow])
		if err != nil {
			return err
		}
		got = r.toStaffMember()
		return nil
	})
	return got, created, db.Unavailable(err)
}

// RevokeStaff deletes a grant; revoking someone who is not staff changes nothing.
func (s *Store) RevokeStaff(ctx context.Context, eventID, userID uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM event_staff WHERE event_id = $1 AND user_id = $2`, eventID, userID)
	return db.Unavailable(err)
}

// Staff lists an event's staff in the order they were granted.
func (s *Store) Staff(ctx context.Context, eventID uuid.UUID) ([]StaffMember, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+staffColumns+` FROM event_staff WHERE event_id = $1 ORDER BY granted_at, user_id`, eventID)
	if err != nil {
		return nil, db.Unavailable(err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[staffRow])
	if err != nil {
		return nil, db.Unavailable(err)
	}
	out := make([]StaffMember, len(rs))
	for i, r := range rs {
		out[i] = r.toStaffMember()
	}
	return out, nil
}

// IsStaff reports whether a user is on an event's staff now.
func (s *Store) IsStaff(ctx context.Context, eventID, userID uuid.UUID) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM event_staff WHERE event_id = $1 AND user_id = $2)`, eventID, userID).Scan(&ok)
	return ok, db.Unavailable(err)
}

// Scannable is one event a user may scan, and as what.
type Scannable struct {
	EventID uuid.UUID
	Title   string
	// StartsAt is nil for an owned event whose facts are not recorded yet.
	StartsAt *time.Time
	Role     string // RoleOwner or RoleStaff
}

// Roles on GET /api/staff/events.
const (
	RoleOwner = "owner"
	RoleStaff = "staff"
)

// MaxScannableEvents bounds GET /api/staff/events.
const MaxScannableEvents = 1000

// ScannableEvents lists the events a user may scan and that are not cancelled: those they
// organise that have ticket types, and those they are staff of; by start, soonest first.
func (s *Store) ScannableEvents(ctx context.Context, userID uuid.UUID) ([]Scannable, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT event_id, title, starts_at, role FROM (
			SELECT DISTINCT ON (tt.event_id) tt.event_id, tt.event_title AS title, f.starts_at, 'owner' AS role
			FROM ticket_types tt LEFT JOIN event_facts f ON f.event_id = tt.event_id
			WHERE tt.organizer_id = $1 AND tt.event_cancelled_at IS NULL
			UNION ALL
			SELECT s.event_id, f.title, f.starts_at, 'staff'
			FROM event_staff s JOIN event_facts f ON f.event_id = s.event_id
			WHERE s.user_id = $1 AND f.organizer_id <> $1
			  AND NOT EXISTS (SELECT 1 FROM cancelled_events c WHERE c.event_id = s.event_id)
		) scannable
		ORDER BY starts_at NULLS LAST, event_id LIMIT $2`, userID, MaxScannableEvents)
	if err != nil {
		return nil, db.Unavailable(err)
	}
	var out []Scannable
	for rows.Next() {
		var sc Scannable
		if err := rows.Scan(&sc.EventID, &sc.Title, &sc.StartsAt, &sc.Role); err != nil {
			rows.Close()
			return nil, db.Unavailable(err)
		}
		if sc.StartsAt != nil {
			u := sc.StartsAt.UTC()
			sc.StartsAt = &u
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, db.Unavailable(err)
	}
	return out, nil
}

// TypeStats are one ticket type's live counts.
type TypeStats struct {
	ID        uuid.UUID
	Kind      Kind
	Quantity  int
	Sold      int
	CheckedIn int
}

// Remaining is how many tickets of the type are left to sell.
func (t TypeStats) Remaining() int { return max(t.Quantity-t.Sold, 0) }

// statsRead is what one stats query returns: the counts and who may see them.
type statsRead struct {
	Types []TypeStats
	// Organizer is the event's organizer as recorded here (uuid.Nil when this service never
	// heard of the event); Staff the user ids of its staff.
	Organizer uuid.UUID
	Staff     map[uuid.UUID]bool
}

// EventStats reads an event's counts per type, its organizer and its staff, in one statement
// (so one consistent snapshot and one round trip).
func (s *Store) EventStats(ctx context.Context, eventID uuid.UUID) (statsRead, error) {
	rows, err := s.pool.Query(ctx, `
		WITH used AS (
			SELECT ticket_type_id, count(*) AS n FROM tickets WHERE event_id = $1 AND status = 'used' GROUP BY ticket_type_id
		), who AS (
			SELECT coalesce(
			           (SELECT organizer_id FROM event_facts WHERE event_id = $1),
			           (SELECT organizer_id FROM ticket_types WHERE event_id = $1 LIMIT 1),
			           (SELECT organizer_id FROM cancelled_events WHERE event_id = $1)) AS organizer_id,
			       coalesce((SELECT array_agg(user_id) FROM event_staff WHERE event_id = $1), '{}') AS staff
		)
		SELECT who.organizer_id, who.staff, tt.id, tt.type, tt.quantity, tt.sold, coalesce(used.n, 0)
		FROM who
		LEFT JOIN ticket_types tt ON tt.event_id = $1
		LEFT JOIN used ON used.ticket_type_id = tt.id
		ORDER BY array_position(ARRAY['standard', 'vip', 'early_bird'], tt.type), tt.id`, eventID)
	if err != nil {
		return statsRead{}, db.Unavailable(err)
	}
	defer rows.Close()
	out := statsRead{Staff: map[uuid.UUID]bool{}}
	for rows.Next() {
		var organizer *uuid.UUID
		var staff []uuid.UUID
		var id *uuid.UUID
		var kind *string
		var quantity, sold *int
		var used int
		if err := rows.Scan(&organizer, &staff, &id, &kind, &quantity, &sold, &used); err != nil {
			return statsRead{}, db.Unavailable(err)
		}
		if organizer != nil {
			out.Organizer = *organizer
		}
		for _, u := range staff {
			out.Staff[u] = true
		}
		if id != nil {
			out.Types = append(out.Types, TypeStats{ID: *id, Kind: Kind(*kind), Quantity: *quantity, Sold: *sold, CheckedIn: used})
		}
	}
	if err := rows.Err(); err != nil {
		return statsRead{}, db.Unavailable(err)
	}
	return out, nil
}
