package ticket

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

func mustBeClientError(t *testing.T, what string, err error) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || web.StatusOf(e.Kind) < 400 || web.StatusOf(e.Kind) > 499 {
		t.Fatalf("%s: %v is not a client error", what, err)
	}
}

// FuzzTicketTypeRequest decodes any body as a new ticket type and validates it, as the
// handler does: nothing panics, every refusal is a 4xx, and an accepted type is within its
// limits and encodes as JSON (a sales window JSON cannot carry would break the answer after
// the write).
func FuzzTicketTypeRequest(f *testing.F) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		`{"type":"vip","price_cents":2500,"currency":"EUR","quantity":10,"sales_start":"2026-06-01T00:00:00Z","sales_end":"2026-07-01T00:00:00Z"}`,
		`{"type":"vip","price_cents":0,"currency":"XXX","quantity":1,"sales_start":"0000-01-01T00:00:00+01:00","sales_end":"2026-07-01T00:00:00Z"}`,
		`{"type":"vip","price_cents":-1,"currency":"eur","quantity":0}`, `{"quantity":1e400}`, `{"price_cents":9223372036854775808}`,
		`{"type":"platinum"}`, `{"sold":5}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req newTicketTypeRequest
		if err := web.DecodeBytes(body, &req); err != nil {
			mustBeClientError(t, "decode", err)
			return
		}
		v, err := toNewTicketType(req).Validate(now)
		if err != nil {
			mustBeClientError(t, "validate", err)
			return
		}
		if !v.Kind.Valid() || v.PriceCents < 0 || v.PriceCents > MaxPriceCents || v.Quantity < 1 || v.Quantity > MaxQuantity ||
			!validCurrency(v.Currency) || !v.SalesEnd.After(v.SalesStart) || !v.SalesEnd.After(now) {
			t.Fatalf("accepted %+v", v)
		}
		tt := TicketType{ID: uuid.New(), EventID: uuid.New(), Kind: v.Kind, PriceCents: v.PriceCents, Currency: v.Currency,
			Quantity: v.Quantity, SalesStart: v.SalesStart, SalesEnd: v.SalesEnd}
		if _, err := json.Marshal(toTicketTypeJSON(tt)); err != nil {
			t.Fatalf("accepted a ticket type its answer cannot encode: %v", err)
		}
	})
}

// FuzzPurchaseRequest decodes any body and Idempotency-Key as a purchase, as the handler
// does: a 4xx or a ticket type id and a key of visible ASCII.
func FuzzPurchaseRequest(f *testing.F) {
	f.Add([]byte(`{"ticket_type_id":"`+uuid.NewString()+`"}`), "key-1")
	f.Add([]byte(`{"ticket_type_id":"nope"}`), "")
	f.Add([]byte(`{"ticket_type_id":null}`), "\x00")
	f.Add([]byte(`{"ticket_type_id":"{`+strings.Repeat("0", 32)+`}"}`), strings.Repeat("k", 201))
	f.Add([]byte(`{"user_id":"x"}`), "é")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		var req purchaseRequest
		if err := web.DecodeBytes(body, &req); err != nil {
			mustBeClientError(t, "decode", err)
			return
		}
		if req.TicketTypeID != nil {
			_, _ = uuid.Parse(*req.TicketTypeID)
		}
		if validIdempotencyKey(key) {
			if key == "" || len(key) > MaxIdempotencyKeyLen || strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				t.Fatalf("accepted Idempotency-Key %q", key)
			}
		}
	})
}

// FuzzPageRequest: any limit and cursor give a page size within the bounds or a 4xx.
func FuzzPageRequest(f *testing.F) {
	f.Add("", "")
	f.Add("100", EncodeCursor(uuid.New()))
	f.Add("101", "dDE")
	f.Add("-5", strings.Repeat("A", 1000))
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		pr, err := ParsePageRequest(limit, cursor, DefaultPageSize, MaxPageSize)
		if err != nil {
			mustBeClientError(t, "page request", err)
			return
		}
		if pr.Limit < 1 || pr.Limit > MaxPageSize {
			t.Fatalf("limit %q gave %d", limit, pr.Limit)
		}
		if pr.After != nil {
			if again, err := ParsePageRequest("", EncodeCursor(*pr.After), DefaultPageSize, MaxPageSize); err != nil || *again.After != *pr.After {
				t.Fatalf("cursor %q does not round-trip: %v", cursor, err)
			}
		}
	})
}
