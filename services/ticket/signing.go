package ticket

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/ticketsig"
)

// Signed ticket codes (issue 10). Every event has one Ed25519 key (keys_store.go), created
// with its first ticket type (or, for events older than the keys, the first time one is
// needed). A ticket's signed code (internal/platform/ticketsig) carries its id and its
// event's id under that key, so a scanner holding the event's public key (GET
// /api/events/{id}/scanner-keys) can tell a genuine ticket offline; the revocation list
// (revocations.go) tells it which genuine tickets no longer admit anyone. Online, validate
// and check-in accept the signed code wherever they accept the plain one, and still decide
// double entry in the database.
//
// Signed codes are not stored: Ed25519 signatures are deterministic, so a ticket's signed
// code is computed when it is serialised (about 20 µs of CPU on one core), always the same.
// The private key never leaves this service's database and memory, and is never logged.

// ScanAccess answers "may this user scan this event's tickets?": its organizer and its door
// staff may. MayScan reports false (not an error) for an event it never heard of.
type ScanAccess interface {
	MayScan(ctx context.Context, userID, eventID uuid.UUID) (bool, error)
}

// storeScanAccess is the ScanAccess of this service's database: the event's organizer (as
// recorded here: copied onto its ticket types, its recorded facts or cancellation) and the
// staff granted on it now.
type storeScanAccess struct{ store *Store }

func (a storeScanAccess) MayScan(ctx context.Context, userID, eventID uuid.UUID) (bool, error) {
	organizer, _, known, err := a.store.KnownOrganizer(ctx, eventID)
	if err != nil {
		return false, err
	}
	if known && organizer == userID {
		return true, nil
	}
	return a.store.IsStaff(ctx, eventID, userID)
}

// maxCachedKeys bounds the key cache; past it the cache starts over (each entry is about
// 200 bytes, and reloading a key costs one query).
const maxCachedKeys = 100_000

// keyCache keeps events' signing keys in memory: they never change, so an entry never goes
// stale.
type keyCache struct {
	store *Store
	mu    sync.RWMutex
	keys  map[uuid.UUID]*eventKey
}

func newKeyCache(store *Store) *keyCache {
	return &keyCache{store: store, keys: make(map[uuid.UUID]*eventKey)}
}

func (c *keyCache) cached(eventID uuid.UUID) *eventKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.keys[eventID]
}

func (c *keyCache) remember(k eventKey) *eventKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= maxCachedKeys {
		c.keys = make(map[uuid.UUID]*eventKey)
	}
	c.keys[k.EventID] = &k
	return &k
}

// get returns an event's key; ok is false when the event has none.
func (c *keyCache) get(ctx context.Context, eventID uuid.UUID) (k *eventKey, ok bool, err error) {
	if k := c.cached(eventID); k != nil {
		return k, true, nil
	}
	stored, ok, err := c.store.EventKey(ctx, eventID)
	if err != nil || !ok {
		return nil, false, err
	}
	return c.remember(stored), true, nil
}

// ensure returns an event's key, creating it if the event has none yet. Only events with
// tickets, or with ticket types, get here.
func (c *keyCache) ensure(ctx context.Context, eventID uuid.UUID) (*eventKey, error) {
	if k, ok, err := c.get(ctx, eventID); ok || err != nil {
		return k, err
	}
	created, err := c.store.CreateEventKey(ctx, eventID)
	if err != nil {
		return nil, err
	}
	return c.remember(created), nil
}

// SignTickets sets the SignedCode of each ticket.
func (c *Core) SignTickets(ctx context.Context, ts []Ticket) error {
	for i := range ts {
		k, err := c.keys.ensure(ctx, ts[i].EventID)
		if err != nil {
			return err
		}
		ts[i].SignedCode = k.signer.Sign(ts[i].ID, ts[i].EventID)
	}
	return nil
}

// SignTicket returns t with its SignedCode set.
func (c *Core) SignTicket(ctx context.Context, t Ticket) (Ticket, error) {
	ts := []Ticket{t}
	err := c.SignTickets(ctx, ts)
	return ts[0], err
}

// errBadSignature answers a check-in of a signed code that does not verify: exactly what an
// unknown plain code gets (404 ticket_not_found), so it tells nobody more than that no ticket
// has this code. Validate answers it as 200 valid:false, reason bad_signature, to the event's
// organizer and staff.
var errBadSignature = errs.New(errs.NotFound, "ticket_not_found", "no ticket has this code")

// ReasonBadSignature is Validation.Reason for a signed code that does not verify.
const ReasonBadSignature = "bad_signature"

// StatusInvalid is Validation.Status for a code that is no ticket's.
const StatusInvalid Status = "invalid"

// canonicalCode turns the {code} of validate or check-in, a plain code or a signed one, into
// the ticket's canonical plain code, for the existing checks to go on with.
//
// A signed code must parse strictly, verify under its event's key (looked up by the event id
// it carries; its kid must be that key's), and name a ticket of that event. A malformed one,
// or a genuine one naming no ticket, is NotFound like an unknown plain code. One that does
// not verify is errBadSignature for the event's organizer and staff and NotFound (as an
// unknown code) for anyone else. A genuine one goes on to the checks by code, which answer anyone else as
// they answer the plain code today.
func (c *Core) canonicalCode(ctx context.Context, caller identity.Identity, raw string) (string, error) {
	if !ticketsig.IsSigned(raw) {
		return ParseCode(raw)
	}
	code, err := ticketsig.Parse(raw)
	if err != nil {
		return "", errBadCode
	}
	k, ok, err := c.keys.get(ctx, code.EventID)
	if err != nil {
		return "", err
	}
	if ok && ticketsig.Verify(k.Public, code) {
		t, err := c.store.ByID(ctx, code.TicketID)
		switch {
		case err == nil && t.EventID == code.EventID:
			return t.Code, nil
		case err == nil || errs.Is(err, errs.NotFound):
			// Genuine but naming no ticket of its event (a purchase that rolled back).
			return "", errBadCode
		default:
			return "", err
		}
	}
	may, err := c.scanAccess.MayScan(ctx, caller.UserID, code.EventID)
	if err != nil {
		return "", err
	}
	if may {
		return "", errBadSignature
	}
	return "", errBadCode
}

// ScannerKeys returns the event's public keys for its organizer and staff; anyone else, and
// an event this service has no ticket types of, get NotFound.
func (c *Core) ScannerKeys(ctx context.Context, caller identity.Identity, eventID uuid.UUID) ([]ticketsig.JSONWebKey, error) {
	may, err := c.scanAccess.MayScan(ctx, caller.UserID, eventID)
	if err != nil {
		return nil, err
	}
	if !may {
		return nil, errEventNotFound
	}
	k, err := c.keys.ensure(ctx, eventID)
	if err != nil {
		return nil, err
	}
	return []ticketsig.JSONWebKey{ticketsig.JWK(k.Public)}, nil
}
