package ticket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
)

func ptr[T any](v T) *T { return &v }

func TestNewTicketTypeValidate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func() NewTicketType {
		return NewTicketType{
			Kind: ptr("vip"), PriceCents: ptr(int64(9900)), Currency: ptr("EUR"), Quantity: ptr(100),
			SalesStart: ptr(now.Add(-time.Hour)), SalesEnd: ptr(now.Add(24 * time.Hour)),
		}
	}
	cases := []struct {
		name   string
		change func(*NewTicketType)
		field  string // empty: valid
	}{
		{"valid", func(*NewTicketType) {}, ""},
		{"free", func(n *NewTicketType) { n.PriceCents = ptr(int64(0)) }, ""},
		{"one ticket", func(n *NewTicketType) { n.Quantity = ptr(1) }, ""},
		{"a million tickets", func(n *NewTicketType) { n.Quantity = ptr(MaxQuantity) }, ""},
		{"standard", func(n *NewTicketType) { n.Kind = ptr("standard") }, ""},
		{"early bird", func(n *NewTicketType) { n.Kind = ptr("early_bird") }, ""},
		{"sales start later", func(n *NewTicketType) { n.SalesStart = ptr(now.Add(time.Hour)) }, ""},
		{"missing type", func(n *NewTicketType) { n.Kind = nil }, "type"},
		{"unknown type", func(n *NewTicketType) { n.Kind = ptr("VIP") }, "type"},
		{"missing price", func(n *NewTicketType) { n.PriceCents = nil }, "price_cents"},
		{"negative price", func(n *NewTicketType) { n.PriceCents = ptr(int64(-1)) }, "price_cents"},
		{"absurd price", func(n *NewTicketType) { n.PriceCents = ptr(int64(MaxPriceCents + 1)) }, "price_cents"},
		{"missing currency", func(n *NewTicketType) { n.Currency = nil }, "currency"},
		{"lower-case currency", func(n *NewTicketType) { n.Currency = ptr("eur") }, "currency"},
		{"unassigned currency", func(n *NewTicketType) { n.Currency = ptr("QQQ") }, "currency"},
		{"long currency", func(n *NewTicketType) { n.Currency = ptr("EURO") }, "currency"},
		{"missing quantity", func(n *NewTicketType) { n.Quantity = nil }, "quantity"},
		{"zero quantity", func(n *NewTicketType) { n.Quantity = ptr(0) }, "quantity"},
		{"too many", func(n *NewTicketType) { n.Quantity = ptr(MaxQuantity + 1) }, "quantity"},
		{"missing start", func(n *NewTicketType) { n.SalesStart = nil }, "sales_start"},
		{"missing end", func(n *NewTicketType) { n.SalesEnd = nil }, "sales_end"},
		{"end before start", func(n *NewTicketType) { n.SalesEnd = ptr(now.Add(-2 * time.Hour)) }, "sales_end"},
		{"end equals start", func(n *NewTicketType) { n.SalesEnd = n.SalesStart }, "sales_end"},
		{"end in the past", func(n *NewTicketType) {
			n.SalesStart, n.SalesEnd = ptr(now.Add(-2*time.Hour)), ptr(now.Add(-time.Hour))
		}, "sales_end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nt := valid()
			c.change(&nt)
			v, err := nt.Validate(now)
			if c.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if v.SalesStart.Location() != time.UTC || v.Currency == "" {
					t.Fatalf("not normalised: %+v", v)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Invalid || len(e.Fields) == 0 || e.Fields[0].Field != c.field {
				t.Fatalf("got %v, want a field error on %s", err, c.field)
			}
		})
	}
}

func TestOnSale(t *testing.T) {
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tt := TicketType{SalesStart: start, SalesEnd: start.Add(time.Hour)}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{start.Add(-time.Nanosecond), false}, {start, true}, {start.Add(59 * time.Minute), true}, {start.Add(time.Hour), false},
	} {
		if got := tt.OnSale(c.at); got != c.want {
			t.Errorf("OnSale(%v) = %v", c.at, got)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	for _, c := range []struct {
		key  string
		want bool
	}{
		{"a", true}, {strings.Repeat("x", 200), true}, {"order-1/2:3_4.5~!", true},
		{"", false}, {strings.Repeat("x", 201), false}, {"with space", false}, {"tab\t", false}, {"ключ", false}, {"\x7f", false},
	} {
		if got := validIdempotencyKey(c.key); got != c.want {
			t.Errorf("validIdempotencyKey(%q) = %v", c.key, got)
		}
	}
	a := Purchase{EventID: uuid.New(), TicketTypeID: uuid.New(), IdempotencyKey: "k"}
	b := a
	b.IdempotencyKey = "other key, same request"
	if !bytes.Equal(a.requestHash(), b.requestHash()) {
		t.Fatal("the key must not change the request's fingerprint")
	}
	b.TicketTypeID = uuid.New()
	if bytes.Equal(a.requestHash(), b.requestHash()) {
		t.Fatal("another ticket type must change the fingerprint")
	}
	c := a
	c.EventID = uuid.New()
	if bytes.Equal(a.requestHash(), c.requestHash()) {
		t.Fatal("another event must change the fingerprint")
	}
}

func TestPageRequest(t *testing.T) {
	id := uuid.New()
	pr, err := ParsePageRequest("", "", DefaultPageSize, MaxPageSize)
	if err != nil || pr.Limit != DefaultPageSize || pr.After != nil {
		t.Fatalf("defaults: %+v %v", pr, err)
	}
	pr, err = ParsePageRequest("100", EncodeCursor(id), DefaultPageSize, MaxPageSize)
	if err != nil || pr.Limit != 100 || pr.After == nil || *pr.After != id {
		t.Fatalf("round trip: %+v %v", pr, err)
	}
	if pr, err := ParsePageRequest("500", "", DefaultInternalPageSize, MaxInternalPageSize); err != nil || pr.Limit != 500 {
		t.Fatalf("internal limit: %+v %v", pr, err)
	}
	for _, c := range []struct{ limit, cursor string }{
		{"0", ""}, {"101", ""}, {"-1", ""}, {"1e2", ""}, {"ten", ""}, {" 5", ""},
		{"", "x"}, {"", "dDE"}, {"", EncodeCursor(id)[:10]}, {"", EncodeCursor(id) + "A"}, {"", "%%%"},
		{"", "djEAAAAAAAAAAAAAAAAAAAAA"}, // right length, wrong prefix
	} {
		if _, err := ParsePageRequest(c.limit, c.cursor, DefaultPageSize, MaxPageSize); !errs.Is(err, errs.Invalid) {
			t.Errorf("limit %q cursor %q: got %v, want Invalid", c.limit, c.cursor, err)
		}
	}
}

func TestValidation(t *testing.T) {
	for _, c := range []struct {
		status Status
		want   Validation
	}{
		{StatusActive, Validation{Valid: true, Status: StatusActive}},
		{StatusUsed, Validation{Status: StatusUsed, Reason: "already_used"}},
		{StatusCancelled, Validation{Status: StatusCancelled, Reason: "ticket_cancelled"}},
	} {
		if got := validation(Ticket{Status: c.status}); got != c.want {
			t.Errorf("validation(%s) = %+v", c.status, got)
		}
	}
}

func TestQRPNG(t *testing.T) {
	b, err := qrPNG(NewCode())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() != r.Dy() || r.Dx() < 200 {
		t.Fatalf("size %v", r)
	}
	// Dark modules and a light quiet zone.
	if c, _, _, _ := img.At(0, 0).RGBA(); c < 0xf000 {
		t.Fatal("the corner is not light")
	}
	dark := false
	for x := 0; x < img.Bounds().Dx() && !dark; x++ {
		r, _, _, _ := img.At(x, img.Bounds().Dy()/2).RGBA()
		dark = r < 0x1000
	}
	if !dark {
		t.Fatal("no dark module on the middle row")
	}
}

// TestEventClient covers the client's mapping of what the event service answers onto
// business errors: unit tests against stand-ins (the integration tests run the real event
// service).
func TestEventClient(t *testing.T) {
	id := uuid.New()
	org := uuid.New()
	good := `{"id":"` + id.String() + `","organizer_id":"` + org.String() + `","title":"T","description":"","venue":"",` +
		`"starts_at":"2026-12-01T18:00:00Z","ends_at":"2026-12-01T21:00:00Z","status":"published","version":2}`
	serve := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/internal/events/"+id.String() {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ctx := context.Background()

	ev, err := NewEventClient(serve(200, good), time.Second).Event(ctx, id)
	if err != nil || ev.OrganizerID != org || ev.Status != EventPublished || ev.Title != "T" || ev.Version != 2 ||
		!ev.EndsAt.Equal(time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)) {
		t.Fatalf("event: %+v %v", ev, err)
	}
	if _, err := NewEventClient(serve(404, `{"code":"event_not_found"}`), time.Second).Event(ctx, id); !errs.Is(err, errs.NotFound) {
		t.Fatalf("404: %v", err)
	}
	unavailable := func(name string, err error) {
		t.Helper()
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.Unavailable || e.Code != "event_service_unavailable" || e.RetryAfter < 1 {
			t.Fatalf("%s: got %v, want 503 event_service_unavailable with Retry-After", name, err)
		}
	}
	_, err = NewEventClient(serve(500, "boom"), time.Second).Event(ctx, id)
	unavailable("500", err)
	_, err = NewEventClient(serve(200, "not json"), time.Second).Event(ctx, id)
	unavailable("garbage", err)
	_, err = NewEventClient(serve(200, `{"id":"`+uuid.NewString()+`","organizer_id":"`+org.String()+`","status":"published"}`), time.Second).Event(ctx, id)
	unavailable("another event", err)

	// Nobody listens: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	_, err = NewEventClient(closedURL, time.Second).Event(ctx, id)
	unavailable("refused", err)

	// Accepts and never answers: the timeout ends the call.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hang.Close() })
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	start := time.Now()
	_, err = NewEventClient("http://"+hang.Addr().String(), 300*time.Millisecond).Event(ctx, id)
	unavailable("hang", err)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the call took %v despite a 300ms timeout", d)
	}
	if c := NewEventClient("http://x", 0); c.http.Timeout != EventTimeout {
		t.Fatalf("default timeout %v", c.http.Timeout)
	}
}

// TestCancellationHandlerPoison: messages that can never be handled are permanent failures,
// refused before the database is touched (the store is nil here).
func TestCancellationHandlerPoison(t *testing.T) {
	h := CancellationHandler(nil, nil)
	event := func(typ string, data any) []byte {
		ev, err := cloudevent.New("test", typ, "s", time.Now(), data)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, value := range map[string][]byte{
		"not json":         []byte("{"),
		"not a cloudevent": []byte(`{"hello":"world"}`),
		"wrong type":       event(cloudevent.TypeEventPublished, cloudevent.EventData{EventID: uuid.New(), OrganizerID: uuid.New()}),
		"data not object":  event(cloudevent.TypeEventCancelled, "cancelled"),
		"no event id":      event(cloudevent.TypeEventCancelled, cloudevent.EventData{OrganizerID: uuid.New()}),
		"no organizer":     event(cloudevent.TypeEventCancelled, cloudevent.EventData{EventID: uuid.New()}),
		"not cancelled":    event(cloudevent.TypeEventCancelled, cloudevent.EventData{EventID: uuid.New(), OrganizerID: uuid.New(), Status: "published"}),
		"bad event id":     event(cloudevent.TypeEventCancelled, map[string]any{"event_id": "x", "organizer_id": uuid.NewString()}),
	} {
		err := h(context.Background(), kafka.Message{Topic: "event.cancelled", Value: value})
		if !errors.Is(err, kafkabus.ErrPermanent) {
			t.Errorf("%s: got %v, want a permanent failure", name, err)
		}
	}
}
