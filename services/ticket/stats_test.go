package ticket

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

// statsWorld is a ticket database with one event: two types, tickets sold and checked in
// by SQL (what the stats read, whatever wrote it), a staff member, and the stats routes
// over a Staff whose snapshot loads are counted.
type statsWorld struct {
	t                     *testing.T
	pool                  *pgxpool.Pool
	staff                 *Staff
	srv                   *httptest.Server
	event, standard, vip  uuid.UUID
	org, member, stranger identity.Identity
	loads                 atomic.Int32
	clock                 atomic.Pointer[time.Time]
}

func newStatsWorld(t *testing.T, interval time.Duration) *statsWorld {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
		t.Fatal(err)
	}
	w := &statsWorld{t: t, pool: pool, event: uuid.New(), standard: uuid.New(), vip: uuid.New(),
		org:      identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer},
		member:   identity.Identity{UserID: uuid.New(), Role: identity.RoleUser},
		stranger: identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer}}
	now := time.Now()
	w.clock.Store(&now)
	store := NewStore(pool)
	for _, tt := range []struct {
		id       uuid.UUID
		kind     Kind
		quantity int
	}{{w.standard, KindStandard, 10}, {w.vip, KindVIP, 5}} {
		w.exec(`INSERT INTO ticket_types (id, event_id, organizer_id, event_title, type, price_cents, currency, quantity, sales_start, sales_end)
			VALUES ($1, $2, $3, 'Stats night', $4, 1000, 'EUR', $5, now() - interval '1 hour', now() + interval '1 day')`,
			tt.id, w.event, w.org.UserID, string(tt.kind), tt.quantity)
	}
	if _, _, err := store.GrantStaff(ctx, EventFacts{EventID: w.event, OrganizerID: w.org.UserID, Title: "Stats night", StartsAt: now.Add(48 * time.Hour)},
		StaffMember{EventID: w.event, UserID: w.member.UserID, Email: "door@example.com", GrantedAt: now, GrantedBy: w.org.UserID}); err != nil {
		t.Fatal(err)
	}
	// No call to the event service is expected: the event is known here.
	w.staff = NewStaff(store, nil, nil, interval)
	w.staff.now = func() time.Time { return *w.clock.Load() }
	load := w.staff.stats.load
	w.staff.stats.load = func(ctx context.Context, id uuid.UUID) (*statsSnapshot, error) {
		w.loads.Add(1) // one load is one query (Store.EventStats)
		return load(ctx, id)
	}
	r := web.NewRouter(slog.New(slog.DiscardHandler))
	StaffRoutes(r, w.staff)
	w.srv = httptest.NewServer(r)
	t.Cleanup(w.srv.Close)
	return w
}

func (w *statsWorld) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := w.pool.Exec(context.Background(), sql, args...); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

// sell adds n tickets of a type, used of them checked in.
func (w *statsWorld) sell(typeID uuid.UUID, n, used int) {
	w.t.Helper()
	for i := range n {
		status, checkedIn := "active", (*time.Time)(nil)
		if i < used {
			at := time.Now()
			status, checkedIn = "used", &at
		}
		w.exec(`INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at, checked_in_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8)`, uuid.Must(uuid.NewV7()), NewCode(), w.event, typeID, uuid.New(), w.org.UserID, status, checkedIn)
	}
	w.exec(`UPDATE ticket_types SET sold = sold + $2 WHERE id = $1`, typeID, n)
}

func (w *statsWorld) advance(d time.Duration) {
	next := w.clock.Load().Add(d)
	w.clock.Store(&next)
}

type statsAnswer struct {
	status int
	body   eventStatsJSON
}

func (w *statsWorld) get(as identity.Identity) (statsAnswer, error) {
	req, _ := http.NewRequest("GET", w.srv.URL+"/api/events/"+w.event.String()+"/stats", nil)
	identity.SetHeaders(req.Header, as)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return statsAnswer{}, err
	}
	defer resp.Body.Close()
	a := statsAnswer{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
			return a, err
		}
	}
	return a, nil
}

func (w *statsWorld) mustGet(as identity.Identity, want int) eventStatsJSON {
	w.t.Helper()
	a, err := w.get(as)
	if err != nil {
		w.t.Fatal(err)
	}
	if a.status != want {
		w.t.Fatalf("stats: %d, want %d", a.status, want)
	}
	return a.body
}

// wantCounts checks an answer: totals and per type (standard then vip).
func wantCounts(t *testing.T, got eventStatsJSON, sold, checkedIn, remaining int, perType [2][3]int) {
	t.Helper()
	if got.Sold != sold || got.CheckedIn != checkedIn || got.Remaining != remaining {
		t.Errorf("totals sold %d, checked in %d, remaining %d; want %d, %d, %d", got.Sold, got.CheckedIn, got.Remaining, sold, checkedIn, remaining)
	}
	if len(got.TicketTypes) != 2 || got.TicketTypes[0].Name != "standard" || got.TicketTypes[1].Name != "vip" {
		t.Fatalf("ticket types: %+v", got.TicketTypes)
	}
	for i, tt := range got.TicketTypes {
		if w := perType[i]; tt.Sold != w[0] || tt.CheckedIn != w[1] || tt.Remaining != w[2] {
			t.Errorf("%s: sold %d, checked in %d, remaining %d; want %v", tt.Name, tt.Sold, tt.CheckedIn, tt.Remaining, w)
		}
	}
}

// TestStatsOneQueryForManyRequests: 100 concurrent requests of the organizer and a staff
// member cost one query and all get the right counts; until the interval passes no request
// queries again (a stranger's neither), and the first request after it sees the new counts.
func TestStatsOneQueryForManyRequests(t *testing.T) {
	t.Parallel()
	w := newStatsWorld(t, time.Second)
	w.sell(w.standard, 7, 3)
	w.sell(w.vip, 2, 1)

	answers := make([]statsAnswer, 100)
	errors := make([]error, 100)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(100)
	done.Add(100)
	for i := range 100 {
		go func() {
			defer done.Done()
			as := w.org
			if i%2 == 1 {
				as = w.member
			}
			ready.Done()
			<-gate
			answers[i], errors[i] = w.get(as)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
	for i := range 100 {
		if errors[i] != nil || answers[i].status != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, answers[i].status, errors[i])
		}
		if answers[i].body.AsOf != answers[0].body.AsOf {
			t.Errorf("request %d got another snapshot (as of %v, not %v)", i, answers[i].body.AsOf, answers[0].body.AsOf)
		}
	}
	if n := w.loads.Load(); n != 1 {
		t.Fatalf("100 concurrent requests made %d stats queries, want 1", n)
	}
	wantCounts(t, answers[0].body, 9, 4, 6, [2][3]int{{7, 3, 3}, {2, 1, 3}})
	if got := answers[0].body.EventID; got != w.event.String() {
		t.Errorf("event_id %s", got)
	}

	// Within the interval: served from the snapshot, even after new sales, to anyone allowed;
	// a stranger gets 404 from the same snapshot.
	w.sell(w.vip, 1, 1)
	w.advance(900 * time.Millisecond)
	wantCounts(t, w.mustGet(w.member, http.StatusOK), 9, 4, 6, [2][3]int{{7, 3, 3}, {2, 1, 3}})
	w.mustGet(w.stranger, http.StatusNotFound)
	if n := w.loads.Load(); n != 1 {
		t.Fatalf("requests within the interval queried: %d queries", n)
	}

	// Past it: one refresh with the new counts.
	w.advance(200 * time.Millisecond)
	got := w.mustGet(w.org, http.StatusOK)
	wantCounts(t, got, 10, 5, 5, [2][3]int{{7, 3, 3}, {3, 2, 2}})
	if n := w.loads.Load(); n != 2 {
		t.Fatalf("after the interval: %d queries, want 2", n)
	}
	if !got.AsOf.Equal(w.clock.Load().UTC()) {
		t.Errorf("as_of %v, want the refresh's start %v", got.AsOf, w.clock.Load().UTC())
	}

	// A revoked member reads the counts until the next refresh, then no more.
	w.exec(`DELETE FROM event_staff WHERE user_id = $1`, w.member.UserID)
	w.mustGet(w.member, http.StatusOK)
	w.advance(time.Second)
	w.mustGet(w.member, http.StatusNotFound)
	w.mustGet(w.org, http.StatusOK)
	if n := w.loads.Load(); n != 3 {
		t.Fatalf("%d queries, want 3", n)
	}
}

// TestStatsQueryRateIsBounded: callers hammering the route for 2.5 s of the real clock cost
// at most one query per started second (so at most 4), however many requests they make.
func TestStatsQueryRateIsBounded(t *testing.T) {
	t.Parallel()
	w := newStatsWorld(t, time.Second)
	w.staff.now = time.Now
	w.sell(w.standard, 2, 1)
	var requests atomic.Int32
	deadline := time.Now().Add(2500 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			as := w.org
			if i%2 == 1 {
				as = w.member
			}
			for time.Now().Before(deadline) {
				a, err := w.get(as)
				if err != nil || a.status != http.StatusOK {
					t.Errorf("%d %v", a.status, err)
					return
				}
				requests.Add(1)
			}
		}()
	}
	wg.Wait()
	n := w.loads.Load()
	t.Logf("%d requests in 2.5 s cost %d stats queries", requests.Load(), n)
	if n < 2 || n > 4 {
		t.Errorf("%d queries in 2.5 s with a 1 s interval, want 2 to 4", n)
	}
	if requests.Load() < 100 {
		t.Errorf("only %d requests: the test did not load the route", requests.Load())
	}
}

// TestStatsEmptyEventOfOwner: before any sale the counts are zero and everything remains; the
// event is known here, so the event service (nil) is never asked.
func TestStatsEmptyEventOfOwner(t *testing.T) {
	t.Parallel()
	w := newStatsWorld(t, time.Second)
	got := w.mustGet(w.org, http.StatusOK)
	wantCounts(t, got, 0, 0, 15, [2][3]int{{0, 0, 10}, {0, 0, 5}})
	if fmt.Sprint(got.AsOf.Location()) != "UTC" {
		t.Errorf("as_of %v is not UTC", got.AsOf)
	}
}
