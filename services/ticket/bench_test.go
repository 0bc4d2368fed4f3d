package ticket

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/event"
)

// benchClients is how many purchases run at once in BenchmarkPurchase.
const benchClients = 16

// BenchmarkPurchase measures the purchase path against real PostgreSQL, with benchClients
// concurrent buyers of one ticket type (the flash-sale shape: every purchase updates the same
// counter row):
//
//   - statement: the purchase statement alone (counter, ticket, outbox, no Idempotency-Key);
//     the database's share of the path.
//   - statement+key: the same with an Idempotency-Key record.
//   - core: Core.Purchase as the service runs it: the caches, the real event service over
//     HTTP when they miss, purchases grouped into batches.
//   - core-ungrouped, core-uncached: the same without grouping (one statement per purchase),
//     or with the event service asked on every purchase.
//   - core-ungrouped-uncached: without either, the path as it was before both.
//   - http: a purchase request to the ticket service's handler over loopback HTTP.
//
// The ticket service runs without Kafka (the relay is not part of the purchase path; its
// rows wait in the outbox). The test PostgreSQL runs with fsync off, so commits cost no disk
// flush: the figures are the path's CPU and lock cost, an upper bound for a durable server.
func BenchmarkPurchase(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	eventLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	eventDB := pgtest.NewDatabase(b)
	eventDone := make(chan error, 1)
	go func() {
		eventDone <- event.Run(ctx, log, event.Config{DatabaseURL: eventDB, MaxConns: 8, Migrate: true}, eventLn)
	}()
	b.Cleanup(func() { cancel(); <-eventDone })
	eventURL := "http://" + eventLn.Addr().String()

	pool, err := db.Open(ctx, pgtest.NewDatabase(b), 2*benchClients)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
		b.Fatal(err)
	}
	store := NewStore(pool)
	events := NewEventClient(eventURL, EventTimeout)
	b.Cleanup(events.Close)
	core := NewCore(store, events)

	r := web.NewRouter(log)
	Routes(r, core)
	ticketLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ticketDone := make(chan error, 1)
	go func() { ticketDone <- web.Serve(ctx, log, "ticket", ticketLn, r) }()
	b.Cleanup(func() { cancel(); <-ticketDone })
	ticketURL := "http://" + ticketLn.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchClients}}

	org := identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer}
	waitReady(b, client, eventURL)
	// newType makes a published event with one type of a million tickets on sale.
	newType := func(b *testing.B) TicketType {
		start := time.Now().Add(30 * 24 * time.Hour).UTC()
		var ev struct{ ID uuid.UUID }
		testCall(b, client, "POST", eventURL+"/api/events", org, map[string]any{
			"title": "Bench", "starts_at": start, "ends_at": start.Add(time.Hour)}, http.StatusCreated, &ev)
		testCall(b, client, "POST", eventURL+"/api/events/"+ev.ID.String()+"/publish", org, nil, http.StatusOK, nil)
		tt, err := core.CreateTicketType(ctx, org, ev.ID, NewTicketType{
			Kind: ptr("standard"), PriceCents: ptr(int64(1000)), Currency: ptr("EUR"), Quantity: ptr(MaxQuantity),
			SalesStart: ptr(time.Now().Add(-time.Minute)), SalesEnd: ptr(start.Add(-time.Hour)),
		})
		if err != nil {
			b.Fatal(err)
		}
		return tt
	}
	render := func(t Ticket) ([]byte, error) { return json.Marshal(t) }
	report := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "purchases/s")
	}

	statement := func(withKey bool) func(b *testing.B) {
		return func(b *testing.B) {
			tt := newType(b)
			b.SetParallelism(parallelism())
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p := Purchase{EventID: tt.EventID, TicketTypeID: tt.ID}
					if withKey {
						p.IdempotencyKey = uuid.NewString()
					}
					caller := identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
					np, err := core.preparePurchase(ctx, caller, p, tt, render)
					if err == nil {
						_, _, err = store.PurchaseBatch(ctx, tt, []newPurchase{np})
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, start)
		}
	}
	b.Run("statement", statement(false))
	b.Run("statement+key", statement(true))

	purchases := func(core *Core) func(b *testing.B) {
		return func(b *testing.B) {
			tt := newType(b)
			b.SetParallelism(parallelism())
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					caller := identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
					if _, err := core.Purchase(ctx, caller, Purchase{EventID: tt.EventID, TicketTypeID: tt.ID}, render); err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, start)
		}
	}
	b.Run("core", purchases(core))
	b.Run("core-ungrouped", purchases(NewCoreWith(store, events, Options{BatchSize: 1, BatchesInFlight: 1 << 20})))
	b.Run("core-uncached", purchases(NewCoreWith(store, events, Options{EventStatusTTL: -1})))
	b.Run("core-ungrouped-uncached", purchases(NewCoreWith(store, events, Options{BatchSize: 1, BatchesInFlight: 1 << 20, EventStatusTTL: -1})))

	b.Run("http", func(b *testing.B) {
		tt := newType(b)
		body := []byte(`{"ticket_type_id":"` + tt.ID.String() + `"}`)
		url := ticketURL + "/api/events/" + tt.EventID.String() + "/tickets"
		var failed atomic.Bool
		b.SetParallelism(parallelism())
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				identity.SetHeaders(req.Header, identity.Identity{UserID: uuid.New(), Role: identity.RoleUser})
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated && failed.CompareAndSwap(false, true) {
					b.Errorf("purchase: %s", resp.Status)
					return
				}
			}
		})
		report(b, start)
	})
}

// parallelism makes RunParallel run benchClients goroutines (it runs the parallelism times
// GOMAXPROCS).
func parallelism() int { return max(1, benchClients/runtime.GOMAXPROCS(0)) }

func waitReady(t testing.TB, client *http.Client, url string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testCall(b testing.TB, client *http.Client, method, url string, as identity.Identity, body any, want int, out any) {
	b.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			b.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		b.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	identity.SetHeaders(req.Header, as)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		b.Fatalf("%s %s: %s: %s", method, url, resp.Status, buf.String())
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			b.Fatal(fmt.Errorf("%s %s: %w", method, url, err))
		}
	}
}
