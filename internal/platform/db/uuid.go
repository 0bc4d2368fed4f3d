package db

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// RegisterUUID teaches m PostgreSQL's uuid (and uuid[]) in github.com/google/uuid's UUID,
// the type every service uses for ids, in the binary format: 16 bytes copied each way.
//
// pgx knows that UUID only through database/sql's interfaces, so without this every UUID
// sent was formatted as text by its Value method, refused by the binary encoder (an error
// built with fmt.Errorf), parsed back and encoded, and every UUID read was formatted as text
// and parsed by its Scan method: 11 % of the ticket service's CPU at half the flash-sale
// benchmark's peak rate, most of it under the arrays of ids of a batch purchase. Open
// registers it on every connection of a pool.
func RegisterUUID(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
}

// uuidCodec is pgx's uuid codec with a binary plan each way for uuid.UUID; every other Go
// type and the text format are left to pgx's.
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeUUIDBinary{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUIDBinary{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeUUIDBinary struct{}

func (encodeUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	u := value.(uuid.UUID)
	return append(buf, u[:]...), nil
}

type scanUUIDBinary struct{}

// Scan leaves dst as it is on NULL, as uuid.UUID's own Scan did; a nullable column is read
// into a *uuid.UUID, which pgx sets to nil.
func (scanUUIDBinary) Scan(src []byte, dst any) error {
	if src == nil {
		return nil
	}
	if len(src) != len(uuid.UUID{}) {
		return fmt.Errorf("uuid: %d bytes, want 16", len(src))
	}
	copy(dst.(*uuid.UUID)[:], src)
	return nil
}
