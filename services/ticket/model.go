package ticket

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/currency"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// Kind is a ticket type's kind; an event has at most one type of each kind.
type Kind string

const (
	KindStandard  Kind = "standard"
	KindVIP       Kind = "vip"
	KindEarlyBird Kind = "early_bird"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindStandard || k == KindVIP || k == KindEarlyBird }

// Status is a ticket's state: active → used at check-in, active → cancelled when its event
// is cancelled.
type Status string

const (
	StatusActive    Status = "active"
	StatusUsed      Status = "used"
	StatusCancelled Status = "cancelled"
	// StatusTransferred is a ticket its holder gave to another user, who got a new ticket.
	StatusTransferred Status = "transferred"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusActive || s == StatusUsed || s == StatusCancelled || s == StatusTransferred
}

// TicketType is what can be bought for an event, with its counter of sold tickets.
type TicketType struct {
	ID          uuid.UUID
	EventID     uuid.UUID
	OrganizerID uuid.UUID
	// EventTitle is copied at creation (a published event's title no longer changes) so that
	// a purchase's message can carry it without asking the event service.
	EventTitle string
	Kind       Kind
	PriceCents int64
	Currency   string
	Quantity   int
	Sold       int
	SalesStart time.Time
	SalesEnd   time.Time
	// MaxPerUser, if set, caps how many tickets of the type one user may buy.
	MaxPerUser *int
	// EventCancelledAt is set when the event's cancellation reached this service.
	EventCancelledAt *time.Time
	CreatedAt        time.Time
}

// Available is how many tickets are left.
func (tt TicketType) Available() int { return max(tt.Quantity-tt.Sold, 0) }

// OnSale reports whether now is inside the sales window [SalesStart, SalesEnd).
func (tt TicketType) OnSale(now time.Time) bool {
	return !now.Before(tt.SalesStart) && now.Before(tt.SalesEnd)
}

// Limits of a ticket type.
const (
	MaxQuantity = 1_000_000
	// MaxPriceCents keeps prices far from integer overflow when summed (10^12 cents).
	MaxPriceCents = 1_000_000_000_000
	// MaxSalesSpan bounds how far from now a sales window may reach, either way. Events are
	// at most ten years ahead; the bound also keeps every time inside what RFC 3339 (and so
	// a JSON answer) can carry: "0000-01-01T00:00:00+01:00" is year -1 in UTC.
	MaxSalesSpan = 10 * 366 * 24 * time.Hour
	// MaxPerUserLimit is the highest purchase limit a type may set.
	MaxPerUserLimit = 100
)

// NewTicketType is what the organizer sends to create a type. Nil fields were absent.
type NewTicketType struct {
	Kind       *string
	PriceCents *int64
	Currency   *string
	Quantity   *int
	SalesStart *time.Time
	SalesEnd   *time.Time
	MaxPerUser *int
}

// ValidNewTicketType is a NewTicketType that passed Validate.
type ValidNewTicketType struct {
	Kind       Kind
	PriceCents int64
	Currency   string
	Quantity   int
	SalesStart time.Time
	SalesEnd   time.Time
	// MaxPerUser is nil for no limit.
	MaxPerUser *int
}

// Validate checks the fields that do not depend on the event and returns them normalised
// (times in UTC at PostgreSQL's microsecond precision).
func (nt NewTicketType) Validate(now time.Time) (ValidNewTicketType, error) {
	var v errs.Validation
	var out ValidNewTicketType
	switch {
	case nt.Kind == nil:
		v.Add("type", "is required")
	case !Kind(*nt.Kind).Valid():
		v.Add("type", "must be one of standard, vip, early_bird")
	default:
		out.Kind = Kind(*nt.Kind)
	}
	switch {
	case nt.PriceCents == nil:
		v.Add("price_cents", "is required")
	case *nt.PriceCents < 0:
		v.Add("price_cents", "must not be negative")
	case *nt.PriceCents > MaxPriceCents:
		v.Add("price_cents", "must be at most "+strconv.FormatInt(MaxPriceCents, 10))
	default:
		out.PriceCents = *nt.PriceCents
	}
	switch {
	case nt.Currency == nil:
		v.Add("currency", "is required")
	case !validCurrency(*nt.Currency):
		v.Add("currency", "must be an ISO 4217 code in upper case, for example EUR")
	default:
		out.Currency = *nt.Currency
	}
	switch {
	case nt.Quantity == nil:
		v.Add("quantity", "is required")
	case *nt.Quantity < 1 || *nt.Quantity > MaxQuantity:
		v.Add("quantity", "must be from 1 to 1000000")
	default:
		out.Quantity = *nt.Quantity
	}
	switch {
	case nt.MaxPerUser == nil:
	case *nt.MaxPerUser < 1 || *nt.MaxPerUser > MaxPerUserLimit:
		v.Add("max_per_user", "must be from 1 to 100")
	case nt.Quantity != nil && *nt.MaxPerUser > *nt.Quantity:
		v.Add("max_per_user", "must not be more than quantity")
	default:
		limit := *nt.MaxPerUser
		out.MaxPerUser = &limit
	}
	switch {
	case nt.SalesStart == nil:
		v.Add("sales_start", "is required")
	case nt.SalesStart.Before(now.Add(-MaxSalesSpan)):
		v.Add("sales_start", "must be at most 10 years ago")
	default:
		out.SalesStart = nt.SalesStart.UTC().Truncate(time.Microsecond)
	}
	switch {
	case nt.SalesEnd == nil:
		v.Add("sales_end", "is required")
	default:
		out.SalesEnd = nt.SalesEnd.UTC().Truncate(time.Microsecond)
		switch {
		case nt.SalesStart != nil && !out.SalesEnd.After(out.SalesStart):
			v.Add("sales_end", "must be after sales_start")
		case !out.SalesEnd.After(now):
			v.Add("sales_end", "must be in the future")
		case out.SalesEnd.After(now.Add(MaxSalesSpan)):
			v.Add("sales_end", "must be at most 10 years ahead")
		}
	}
	return out, v.Err()
}

// validCurrency accepts three upper-case letters that ISO 4217 assigns.
func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	_, err := currency.ParseISO(s)
	return err == nil
}

// Ticket is one bought ticket.
type Ticket struct {
	ID           uuid.UUID
	Code         string
	EventID      uuid.UUID
	TicketTypeID uuid.UUID
	UserID       uuid.UUID
	// OrganizerID is copied from the type at purchase, so validate and check-in decide who
	// may act on the ticket without asking the event service.
	OrganizerID uuid.UUID
	Status      Status
	PurchasedAt time.Time
	CheckedInAt *time.Time
	CancelledAt *time.Time
	// TransferredAt is set when the ticket was given to another user (status transferred).
	TransferredAt *time.Time
	// TransferredFrom is the ticket this one replaced, when it came from a transfer.
	TransferredFrom *uuid.UUID
	// SignedCode is the ticket's signed code (signing.go), set by Core.SignTickets before
	// the ticket is shown; it is not stored.
	SignedCode string
}

// Validation is the answer to "may this ticket get in?".
type Validation struct {
	Valid  bool
	Status Status
	// Reason is empty for a valid ticket, else a stable code: already_used, ticket_cancelled,
	// transferred.
	Reason string
}

// Holder is one line of the internal holders list.
type Holder struct {
	TicketID uuid.UUID
	UserID   uuid.UUID
	Status   Status
}

// Purchase is a request to buy one ticket.
type Purchase struct {
	EventID      uuid.UUID
	TicketTypeID uuid.UUID
	// IdempotencyKey, if not empty, makes a retry return the first request's ticket.
	IdempotencyKey string
}

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 200

// validIdempotencyKey accepts 1 to 200 visible ASCII characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestHash fingerprints what a purchase asks for, so that a retry with the same
// Idempotency-Key can be told from a different request reusing it. It hashes the meaning of
// the request (event and type), not its bytes, so reformatted JSON is still the same request.
func (p Purchase) requestHash() []byte {
	h := sha256.New()
	h.Write([]byte("purchase/v1\x00"))
	h.Write(p.EventID[:])
	h.Write(p.TicketTypeID[:])
	return h.Sum(nil)
}

// PurchaseResult is a bought ticket and the exact response body that announced it, which a
// retry with the same Idempotency-Key gets again.
type PurchaseResult struct {
	Ticket   Ticket
	Response []byte
	// Replayed is true when the ticket was bought by an earlier request with the same key.
	Replayed bool
}

// Paging limits.
const (
	DefaultPageSize         = 20
	MaxPageSize             = 100
	DefaultInternalPageSize = 100
	MaxInternalPageSize     = 500
)

// PageRequest asks for one page of a list ordered by ticket id.
type PageRequest struct {
	Limit int
	// After is the last ticket id of the previous page.
	After *uuid.UUID
}

// cursorPrefix versions the cursor format.
const cursorPrefix = "t1"

// EncodeCursor makes the opaque cursor that continues a list after ticket id.
func EncodeCursor(id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte(cursorPrefix), id[:]...))
}

var errBadCursor = errs.New(errs.Invalid, "invalid_cursor", "the cursor is not one this API returned")

// ParsePageRequest reads the limit and cursor query parameters with the given default and
// maximum page size.
func ParsePageRequest(limit, cursor string, def, maxLimit int) (PageRequest, error) {
	pr := PageRequest{Limit: def}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > maxLimit {
			return PageRequest{}, errs.Newf(errs.Invalid, "invalid_limit", "limit must be a whole number from 1 to %d", maxLimit)
		}
		pr.Limit = n
	}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(raw) != len(cursorPrefix)+16 || string(raw[:len(cursorPrefix)]) != cursorPrefix {
			return PageRequest{}, errBadCursor
		}
		id, _ := uuid.FromBytes(raw[len(cursorPrefix):])
		pr.After = &id
	}
	return pr, nil
}
