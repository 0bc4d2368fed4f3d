package event

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// Status is where an event is in its lifecycle: draft → published → cancelled, or
// draft → cancelled.
type Status string

const (
	StatusDraft     Status = "draft"
	StatusPublished Status = "published"
	StatusCancelled Status = "cancelled"
)

// Event is an organizer's event.
type Event struct {
	ID          uuid.UUID
	OrganizerID uuid.UUID
	Title       string
	Description string
	Venue       string
	StartsAt    time.Time
	EndsAt      time.Time
	Status      Status
	// Version starts at 1 and increases with every change, so Kafka consumers can drop a
	// stale message.
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	PublishedAt    *time.Time
	CancelledAt    *time.Time
	ReminderSentAt *time.Time
}

// WasPublic reports whether anyone but the organizer has ever been able to see the event:
// it is published, or it was before it was cancelled.
func (e Event) WasPublic() bool { return e.Status == StatusPublished || e.PublishedAt != nil }

// Field limits of an event.
const (
	MaxTitleLen       = 200
	MaxDescriptionLen = 5000
	MaxVenueLen       = 300
	// MaxScheduleAhead bounds how far in the future an event may be; it also keeps every
	// time inside what RFC 3339 (and so JSON) can express.
	MaxScheduleAhead = 10 * 366 * 24 * time.Hour
)

// NewEvent is what create and update take.
type NewEvent struct {
	Title       string
	Description string
	Venue       string
	StartsAt    time.Time
	EndsAt      time.Time
}

// Validate checks an event's fields against now and returns them normalised: text trimmed,
// times in UTC at PostgreSQL's microsecond precision.
func (ne NewEvent) Validate(now time.Time) (NewEvent, error) {
	ne.Title = strings.TrimSpace(ne.Title)
	ne.Description = strings.TrimSpace(ne.Description)
	ne.Venue = strings.TrimSpace(ne.Venue)
	ne.StartsAt = ne.StartsAt.UTC().Truncate(time.Microsecond)
	ne.EndsAt = ne.EndsAt.UTC().Truncate(time.Microsecond)

	var v errs.Validation
	switch {
	case ne.Title == "":
		v.Add("title", "must not be empty")
	case utf8.RuneCountInString(ne.Title) > MaxTitleLen:
		v.Add("title", "must be at most 200 characters")
	case strings.ContainsFunc(ne.Title, unicode.IsControl):
		v.Add("title", "must not contain control characters")
	}
	switch {
	case utf8.RuneCountInString(ne.Description) > MaxDescriptionLen:
		v.Add("description", "must be at most 5000 characters")
	case strings.ContainsFunc(ne.Description, isForbiddenInText):
		v.Add("description", "must not contain control characters other than line breaks and tabs")
	}
	switch {
	case utf8.RuneCountInString(ne.Venue) > MaxVenueLen:
		v.Add("venue", "must be at most 300 characters")
	case strings.ContainsFunc(ne.Venue, unicode.IsControl):
		v.Add("venue", "must not contain control characters")
	}
	switch {
	case ne.StartsAt.IsZero():
		v.Add("starts_at", "is required")
	case !ne.StartsAt.After(now):
		v.Add("starts_at", "must be in the future")
	case ne.StartsAt.After(now.Add(MaxScheduleAhead)):
		v.Add("starts_at", "must be at most 10 years ahead")
	}
	switch {
	case ne.EndsAt.IsZero():
		v.Add("ends_at", "is required")
	case !ne.StartsAt.IsZero() && !ne.EndsAt.After(ne.StartsAt):
		v.Add("ends_at", "must be after starts_at")
	case ne.EndsAt.After(now.Add(MaxScheduleAhead)):
		v.Add("ends_at", "must be at most 10 years ahead")
	}
	return ne, v.Err()
}

// isForbiddenInText allows line breaks and tabs in long text, no other control character.
func isForbiddenInText(r rune) bool {
	return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
}

// Paging limits of the event lists.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Cursor is a position in a list ordered by (starts_at, id): the last event of a page.
type Cursor struct {
	StartsAt time.Time
	ID       uuid.UUID
}

// cursorVersion prefixes encoded cursors so their format can change without misreading old
// ones.
const cursorVersion = "1"

// Encode makes the opaque string a client sends back as ?cursor=.
func (c Cursor) Encode() string {
	raw := cursorVersion + "." + strconv.FormatInt(c.StartsAt.UnixMicro(), 10) + "." + c.ID.String()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

var errBadCursor = errs.New(errs.Invalid, "invalid_cursor", "the cursor is not one this API returned")

// ParseCursor decodes a cursor made by Encode.
func ParseCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 64 {
		return Cursor{}, errBadCursor
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != cursorVersion {
		return Cursor{}, errBadCursor
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Cursor{}, errBadCursor
	}
	id, err := uuid.Parse(parts[2])
	if err != nil || len(parts[2]) != 36 {
		return Cursor{}, errBadCursor
	}
	return Cursor{StartsAt: time.UnixMicro(micros).UTC(), ID: id}, nil
}

// PageRequest asks for one page of a list.
type PageRequest struct {
	Limit int
	After *Cursor
}

// Page is one page of events; Next is set when more may follow.
type Page struct {
	Items []Event
	Next  *Cursor
}

// ParsePageRequest reads the limit and cursor query parameters.
func ParsePageRequest(limit, cursor string) (PageRequest, error) {
	pr := PageRequest{Limit: DefaultPageSize}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxPageSize {
			return PageRequest{}, errs.Newf(errs.Invalid, "invalid_limit", "limit must be a whole number from 1 to %d", MaxPageSize)
		}
		pr.Limit = n
	}
	if cursor != "" {
		c, err := ParseCursor(cursor)
		if err != nil {
			return PageRequest{}, err
		}
		pr.After = &c
	}
	return pr, nil
}

// RemindResult is the outcome of a reminder request.
type RemindResult struct {
	// Sent is true only for the one request that sent the reminder.
	Sent   bool
	SentAt time.Time
}
