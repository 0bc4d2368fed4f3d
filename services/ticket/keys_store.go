package ticket

import (
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/ticketsig"
)

// eventKey is an event's signing key (migrations/00004): created once, never changed.
type eventKey struct {
	EventID uuid.UUID
	KID     string
	Public  ed25519.PublicKey
	signer  *ticketsig.Signer
}

// newEventKeyRow draws a fresh key for an event: its seed, public key and kid.
func newEventKeyRow() (seed []byte, pub ed25519.PublicKey, kid string, err error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, "", err
	}
	return priv.Seed(), pub, ticketsig.KID(pub), nil
}

// insertEventKeySQL creates an event's key unless it has one: of concurrent creators (two
// replicas creating the first types of one event, or a lazy creation racing a type's) the
// first commits and the others' inserts do nothing, so every reader agrees on one key.
const insertEventKeySQL = `INSERT INTO event_signing_keys (event_id, kid, public_key, private_key)
	VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING`

// createEventKeyTx creates an event's key in tx unless it has one.
func createEventKeyTx(ctx context.Context, tx pgx.Tx, eventID uuid.UUID) error {
	seed, pub, kid, err := newEventKeyRow()
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, insertEventKeySQL, eventID, kid, []byte(pub), seed)
	return err
}

// EventKey returns an event's signing key; ok is false when it has none yet.
func (s *Store) EventKey(ctx context.Context, eventID uuid.UUID) (k eventKey, ok bool, err error) {
	var kid string
	var pub, seed []byte
	err = s.pool.QueryRow(ctx, `SELECT kid, public_key, private_key FROM event_signing_keys WHERE event_id = $1`, eventID).
		Scan(&kid, &pub, &seed)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventKey{}, false, nil
	}
	if err != nil {
		return eventKey{}, false, db.Unavailable(err)
	}
	k, err = eventKeyFrom(eventID, kid, pub, seed)
	if err != nil {
		return eventKey{}, false, err
	}
	return k, true, nil
}

// CreateEventKey creates an event's key unless it has one, and returns the one it has.
func (s *Store) CreateEventKey(ctx context.Context, eventID uuid.UUID) (eventKey, error) {
	seed, pub, kid, err := newEventKeyRow()
	if err != nil {
		return eventKey{}, err
	}
	if _, err := s.pool.Exec(ctx, insertEventKeySQL, eventID, kid, []byte(pub), seed); err != nil {
		return eventKey{}, db.Unavailable(err)
	}
	k, ok, err := s.EventKey(ctx, eventID)
	if err == nil && !ok {
		err = errors.New("event signing key vanished after its insert")
	}
	return k, err
}

// eventKeyFrom checks a stored key (its public key and kid must be its seed's) and makes it
// a signer.
func eventKeyFrom(eventID uuid.UUID, kid string, pub, seed []byte) (eventKey, error) {
	if len(seed) != ed25519.SeedSize {
		return eventKey{}, errors.New("event signing key: bad seed length")
	}
	priv := ed25519.NewKeyFromSeed(seed)
	signer := ticketsig.NewSigner(priv)
	if !signer.Public().Equal(ed25519.PublicKey(pub)) || signer.KID() != kid {
		return eventKey{}, errors.New("event signing key: public key or kid does not match the seed")
	}
	return eventKey{EventID: eventID, KID: kid, Public: signer.Public(), signer: signer}, nil
}
