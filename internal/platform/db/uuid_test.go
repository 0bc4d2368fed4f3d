package db_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

// UUIDs go to PostgreSQL and back unchanged, alone, in arrays, through pointers, as NULL, in
// the text format, and next to the other Go types pgx reads a uuid into.
func TestUUIDRoundTrips(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()

	var one uuid.UUID
	var many []uuid.UUID
	var text string
	if err := pool.QueryRow(ctx, "SELECT $1::uuid, $2::uuid[], $1::uuid::text", a, []uuid.UUID{a, b}).Scan(&one, &many, &text); err != nil {
		t.Fatal(err)
	}
	if one != a || len(many) != 2 || many[0] != a || many[1] != b || text != a.String() {
		t.Fatalf("got %v %v %q, want %v [%v %v] %q", one, many, text, a, a, b, a.String())
	}

	// What PostgreSQL compares is the value sent, not a text form of it.
	var equal bool
	if err := pool.QueryRow(ctx, "SELECT $1::uuid = $2::text::uuid", a, a.String()).Scan(&equal); err != nil || !equal {
		t.Fatalf("uuid sent as binary = its text form: %v, %v", equal, err)
	}

	// NULL: a *uuid.UUID becomes nil; a uuid.UUID keeps its value, as its own Scan did.
	ptr, kept := &b, a
	if err := pool.QueryRow(ctx, "SELECT NULL::uuid, NULL::uuid").Scan(&ptr, &kept); err != nil {
		t.Fatal(err)
	}
	if ptr != nil || kept != a {
		t.Fatalf("NULL scanned into %v and %v", ptr, kept)
	}
	var sent *uuid.UUID
	if err := pool.QueryRow(ctx, "SELECT $1::uuid IS NULL", sent).Scan(&equal); err != nil || !equal {
		t.Fatalf("nil *uuid.UUID sent as NULL: %v, %v", equal, err)
	}

	// The text format (the simple protocol) and pgx's own types still work.
	var viaText uuid.UUID
	if err := pool.QueryRow(ctx, "SELECT $1::uuid", pgx.QueryExecModeSimpleProtocol, a).Scan(&viaText); err != nil || viaText != a {
		t.Fatalf("simple protocol: %v, %v", viaText, err)
	}
	var native pgtype.UUID
	var raw [16]byte
	if err := pool.QueryRow(ctx, "SELECT $1::uuid, $1::uuid", a).Scan(&native, &raw); err != nil {
		t.Fatal(err)
	}
	if !native.Valid || native.Bytes != a || raw != a {
		t.Fatalf("pgtype.UUID %v, [16]byte %v, want %v", native, raw, a)
	}
}

// A malformed value is an error, not a silently truncated id.
func TestUUIDScanRejectsWrongLength(t *testing.T) {
	m := pgtype.NewMap()
	db.RegisterUUID(m)
	var u uuid.UUID
	if err := m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, []byte{1, 2, 3}, &u); err == nil {
		t.Fatalf("3 bytes scanned into %v without an error", u)
	}
}

// The 64 ids of a full purchase batch, encoded as uuid[] with and without RegisterUUID.
func BenchmarkEncodeUUIDArray(b *testing.B) {
	ids := make([]uuid.UUID, 64)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for _, tc := range []struct {
		name     string
		register bool
	}{{"pgx", false}, {"registered", true}} {
		b.Run(tc.name, func(b *testing.B) {
			m := pgtype.NewMap()
			if tc.register {
				db.RegisterUUID(m)
			}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
