package ticket

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
)

// Door staff (issue 10): an organizer grants another user the right to validate and check in
// one event's tickets, and revokes it. The grants live in this service's database beside the
// tickets, so check-in decides "organizer or staff" in its own UPDATE (Store.CheckIn): a
// revoked member's next check-in is refused, with no cache in between.
//
// Whose event it is: a published event's organizer never changes, so what this service
// recorded (a ticket type's copied organizer, the event's facts recorded at its first grant,
// or its recorded cancellation) decides without a call. An event this service never heard
// of (no type, no grant yet) is asked of the event service, which alone knows drafts and
// published events without types.

// Staff holds the rules of door staff, the events a user may scan and live counts.
type Staff struct {
	store  *Store
	events Events
	users  Users
	now    func() time.Time
	stats  *statsCache
}

// NewStaff returns the staff layer. statsInterval is how long a stats snapshot is served
// (DefaultStatsInterval when 0; negative: refreshed on every request).
func NewStaff(store *Store, events Events, users Users, statsInterval time.Duration) *Staff {
	if statsInterval == 0 {
		statsInterval = DefaultStatsInterval
	}
	s := &Staff{store: store, events: events, users: users, now: time.Now}
	s.stats = newStatsCache(statsInterval, func() time.Time { return s.now() }, s.loadStats)
	return s
}

var errCannotGrantSelf = errs.New(errs.Unprocessable, "cannot_grant_self", "the organizer may scan their own event already: grant someone else")

// MaxEmailLen is the longest email accepted (RFC 5321's path limit, as the user service).
const MaxEmailLen = 254

// ownedBy checks that the caller organises the event; anyone else, and an unknown event,
// get NotFound (event_not_found) so that staff routes reveal nothing of others' events.
func (s *Staff) ownedBy(ctx context.Context, caller identity.Identity, eventID uuid.UUID) error {
	organizer, _, known, err := s.store.KnownOrganizer(ctx, eventID)
	if err != nil {
		return err
	}
	if !known {
		ev, err := s.events.Event(ctx, eventID)
		if err != nil {
			return err
		}
		organizer = ev.OrganizerID
	}
	if organizer != caller.UserID {
		return errEventNotFound
	}
	return nil
}

// ListStaff lists the event's staff for its organizer, in the order they were granted.
func (s *Staff) ListStaff(ctx context.Context, caller identity.Identity, eventID uuid.UUID) ([]StaffMember, error) {
	if err := s.ownedBy(ctx, caller, eventID); err != nil {
		return nil, err
	}
	return s.store.Staff(ctx, eventID)
}

// validStaffEmail checks the email field before anyone is asked about it.
func validStaffEmail(email *string) (string, error) {
	var v errs.Validation
	switch {
	case email == nil || strings.TrimSpace(*email) == "":
		v.Add("email", "is required")
	case len(*email) > MaxEmailLen:
		v.Add("email", "must be at most 254 characters")
	case !utf8.ValidString(*email) || strings.ContainsFunc(*email, func(r rune) bool { return r < 0x20 || r == 0x7f }) ||
		!strings.Contains(*email, "@"):
		v.Add("email", "must be an email address")
	default:
		return strings.TrimSpace(*email), nil
	}
	return "", v.Err()
}

// GrantStaff gives the user with an email scanning rights for the caller's published event.
// Granting someone already on the staff answers their grant again (created false).
func (s *Staff) GrantStaff(ctx context.Context, caller identity.Identity, eventID uuid.UUID, email *string) (StaffMember, bool, error) {
	addr, err := validStaffEmail(email)
	if err != nil {
		return StaffMember{}, false, err
	}
	organizer, cancelled, known, err := s.store.KnownOrganizer(ctx, eventID)
	if err != nil {
		return StaffMember{}, false, err
	}
	if known && organizer != caller.UserID {
		return StaffMember{}, false, errEventNotFound
	}
	if cancelled {
		return StaffMember{}, false, errEventCancelled
	}
	// The event service has the last word on the status (and the title and start the
	// scanner page lists).
	ev, err := s.events.Event(ctx, eventID)
	if err != nil {
		return StaffMember{}, false, err
	}
	if ev.OrganizerID != caller.UserID {
		return StaffMember{}, false, errEventNotFound
	}
	switch ev.Status {
	case EventPublished:
	case EventCancelled:
		return StaffMember{}, false, errEventCancelled
	default:
		return StaffMember{}, false, errEventNotPublished
	}
	u, err := s.users.ByEmail(ctx, addr)
	if err != nil {
		return StaffMember{}, false, err
	}
	if u.ID == caller.UserID {
		return StaffMember{}, false, errCannotGrantSelf
	}
	return s.store.GrantStaff(ctx,
		EventFacts{EventID: eventID, OrganizerID: ev.OrganizerID, Title: ev.Title, StartsAt: ev.StartsAt},
		StaffMember{EventID: eventID, UserID: u.ID, Email: u.Email, GrantedAt: s.now().UTC().Truncate(time.Microsecond), GrantedBy: caller.UserID})
}

// RevokeStaff takes a user's scanning rights for the caller's event away, at once: their
// next validation or check-in is refused. Revoking someone who is not staff (or a user id
// that names nobody) succeeds and changes nothing.
func (s *Staff) RevokeStaff(ctx context.Context, caller identity.Identity, eventID uuid.UUID, rawUserID string) error {
	if err := s.ownedBy(ctx, caller, eventID); err != nil {
		return err
	}
	userID, err := uuid.Parse(rawUserID)
	if err != nil {
		return nil // not a user id, so not staff: nothing to revoke
	}
	return s.store.RevokeStaff(ctx, eventID, userID)
}

// maxFactsFetches bounds the event service calls one GET /api/staff/events makes to learn
// start times it has not recorded yet; the rest are learnt on the next calls.
const maxFactsFetches = 20

// ScannableEvents lists the events the caller may scan: those they organise that have ticket
// types, and those they are staff of, soonest first, cancelled ones left out.
func (s *Staff) ScannableEvents(ctx context.Context, caller identity.Identity) ([]Scannable, error) {
	list, err := s.store.ScannableEvents(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	// An owned event's start is recorded the first time it is needed (types copy only the
	// organizer and title): ask the event service once, never again for that event.
	fetched := 0
	for i := range list {
		if list[i].StartsAt != nil || fetched == maxFactsFetches {
			continue
		}
		fetched++
		ev, err := s.events.Event(ctx, list[i].EventID)
		if err != nil {
			if errs.Is(err, errs.Unavailable) {
				break // answered without the start; the next call tries again
			}
			continue
		}
		if ev.Status != EventPublished && ev.Status != EventCancelled {
			continue
		}
		if err := s.store.RecordEventFacts(ctx, EventFacts{EventID: ev.ID, OrganizerID: ev.OrganizerID, Title: ev.Title, StartsAt: ev.StartsAt}); err != nil {
			return nil, err
		}
		at := ev.StartsAt.UTC()
		list[i].StartsAt = &at
	}
	if fetched > 0 {
		slices.SortStableFunc(list, func(a, b Scannable) int {
			switch {
			case a.StartsAt == nil && b.StartsAt == nil:
				return strings.Compare(a.EventID.String(), b.EventID.String())
			case a.StartsAt == nil:
				return 1
			case b.StartsAt == nil:
				return -1
			}
			if c := a.StartsAt.Compare(*b.StartsAt); c != 0 {
				return c
			}
			return strings.Compare(a.EventID.String(), b.EventID.String())
		})
	}
	return list, nil
}

// Stats returns the event's live counts for its organizer or staff, from a snapshot at most
// the stats interval old (see stats.go); anyone else gets NotFound.
func (s *Staff) Stats(ctx context.Context, caller identity.Identity, eventID uuid.UUID) (EventStats, error) {
	snap, err := s.stats.get(ctx, eventID)
	if err != nil {
		return EventStats{}, err
	}
	if !snap.mayRead(caller.UserID) {
		return EventStats{}, errEventNotFound
	}
	return snap.stats, nil
}

// loadStats takes a snapshot: one query; for an event this service never heard of, also one
// call to the event service to learn whose it is (its counts are all zero).
func (s *Staff) loadStats(ctx context.Context, eventID uuid.UUID) (*statsSnapshot, error) {
	asOf := s.now().UTC()
	r, err := s.store.EventStats(ctx, eventID)
	if err != nil {
		return nil, err
	}
	snap := &statsSnapshot{stats: EventStats{EventID: eventID, Types: r.Types, AsOf: asOf}, organizer: r.Organizer, staff: r.Staff}
	if snap.organizer == uuid.Nil {
		ev, err := s.events.Event(ctx, eventID)
		switch {
		case errs.Is(err, errs.NotFound):
		case err != nil:
			return nil, err
		default:
			snap.organizer = ev.OrganizerID
		}
	}
	return snap, nil
}

var errNotScanner = errs.New(errs.Forbidden, "not_owner", "only the organizer of the ticket's event or its door staff may do this")

// mayScan checks that the caller may validate and check in the ticket: the organizer of its
// event or one of its staff now. Other users are Forbidden, as before staff existed.
func (c *Core) mayScan(ctx context.Context, caller identity.Identity, t Ticket) error {
	if t.OrganizerID == caller.UserID {
		return nil
	}
	ok, err := c.store.IsStaff(ctx, t.EventID, caller.UserID)
	if err != nil {
		return err
	}
	if !ok {
		return errNotScanner
	}
	return nil
}
