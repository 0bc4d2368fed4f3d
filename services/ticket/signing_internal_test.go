package ticket

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/ticketsig"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

// QRPNGForTest lets the black-box tests compare GET /api/tickets/{id}/qr with the PNG of the
// text they expect (the QR encoder is deterministic; no QR decoder is among the modules).
var QRPNGForTest = qrPNG

func newSigningStore(t *testing.T) *Store {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(context.Background(), pool, Migrations()...); err != nil {
		t.Fatal(err)
	}
	return NewStore(pool)
}

// TestEventKeyCreatedOnce races creators of one event's key (as replicas creating its first
// types, or lazily, at once): all of them, and a replica starting later with an empty cache,
// end up with the same key.
func TestEventKeyCreatedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newSigningStore(t)
	eventID := uuid.New()

	const n = 16
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// A cache per goroutine: each behaves as its own replica.
			k, err := newKeyCache(store).ensure(ctx, eventID)
			if err == nil {
				kids[i] = k.KID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if kids[i] != kids[0] {
			t.Fatalf("creator %d got key %s, creator 0 got %s", i, kids[i], kids[0])
		}
	}
	var rows int
	if err := store.pool.QueryRow(ctx, `SELECT count(*) FROM event_signing_keys WHERE event_id = $1`, eventID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d key rows", rows)
	}

	later, ok, err := newKeyCache(store).get(ctx, eventID)
	if err != nil || !ok || later.KID != kids[0] {
		t.Fatalf("a later replica reads %v %v %v", later, ok, err)
	}
	// The stored key signs what its public key verifies.
	tid := uuid.New()
	code, err := ticketsig.Parse(later.signer.Sign(tid, eventID))
	if err != nil || !ticketsig.Verify(later.Public, code) || code.TicketID != tid {
		t.Fatalf("stored key does not sign: %v", err)
	}

	// An event without a key has none until one is asked for; get does not create one.
	if _, ok, err := newKeyCache(store).get(ctx, uuid.New()); ok || err != nil {
		t.Fatalf("get of an unknown event: %v %v", ok, err)
	}
}

// TestEventKeyRefusesACorruptRow checks that a stored key whose public key is not its
// seed's is refused rather than used to sign codes nobody can verify.
func TestEventKeyRefusesACorruptRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newSigningStore(t)
	eventID := uuid.New()
	k, err := store.CreateEventKey(ctx, eventID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.pool.Exec(ctx, `UPDATE event_signing_keys SET private_key = $2 WHERE event_id = $1`, eventID, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.EventKey(ctx, eventID); err == nil {
		t.Fatalf("a corrupt key row (kid %s) was accepted", k.KID)
	}
}

// BenchmarkRenderTicket is what signing adds to a purchase: the purchase answer rendered
// as the handler renders it, without and with the signed code (the event's key cached, as
// it is after the event's first purchase on a replica).
func BenchmarkRenderTicket(b *testing.B) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	eventID := uuid.New()
	keys := newKeyCache(nil)
	keys.remember(eventKey{EventID: eventID, KID: ticketsig.KID(priv.Public().(ed25519.PublicKey)),
		Public: priv.Public().(ed25519.PublicKey), signer: ticketsig.NewSigner(priv)})
	c := &Core{keys: keys}
	t := Ticket{ID: uuid.Must(uuid.NewV7()), Code: NewCode(), EventID: eventID, TicketTypeID: uuid.New(), UserID: uuid.New(),
		Status: StatusActive, PurchasedAt: time.Now().UTC()}
	ctx := context.Background()
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(toTicketJSON(t)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signed", func(b *testing.B) {
		for b.Loop() {
			st, err := c.SignTicket(ctx, t)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(toTicketJSON(st)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRevocationBackfill migrates a database holding tickets cancelled before migration
// 00004: they are revoked in the order they were cancelled, and the sequence goes on after
// them.
func TestRevocationBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	set := Migrations()[0]
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, set.FS, goose.WithTableName(set.Table), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	eventID, later, earlier, active := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, tk := range []struct {
		id          uuid.UUID
		status      string
		cancelledAt *time.Time
	}{
		{later, "cancelled", ptr(now)},
		{earlier, "cancelled", ptr(now.Add(-time.Hour))},
		{active, "active", nil},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at, cancelled_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			tk.id, NewCode(), eventID, uuid.New(), uuid.New(), uuid.New(), tk.status, now.Add(-2*time.Hour), tk.cancelledAt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	seq := func(id uuid.UUID) (s *int64, at *time.Time) {
		if err := pool.QueryRow(ctx, `SELECT revocation_seq, revoked_at FROM tickets WHERE id = $1`, id).Scan(&s, &at); err != nil {
			t.Fatal(err)
		}
		return s, at
	}
	s1, at1 := seq(earlier)
	s2, at2 := seq(later)
	s3, at3 := seq(active)
	if s1 == nil || s2 == nil || *s1 != 1 || *s2 != 2 || !at1.Equal(now.Add(-time.Hour)) || !at2.Equal(now) {
		t.Fatalf("backfilled revocations: %v %v, %v %v", s1, at1, s2, at2)
	}
	if s3 != nil || at3 != nil {
		t.Fatalf("an active ticket was revoked: %v %v", s3, at3)
	}
	var next int64
	if err := pool.QueryRow(ctx, `SELECT nextval('ticket_revocation_seq')`).Scan(&next); err != nil || next != 3 {
		t.Fatalf("the sequence goes on at %d (%v), want 3", next, err)
	}
	if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
		t.Fatal(err)
	}
}
