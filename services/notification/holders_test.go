package notification_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/testkit"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/event"
	"github.com/sbor-dev/sbor/services/notification"
	"github.com/sbor-dev/sbor/services/ticket"
)

// platform is the real event and ticket services, each on its own database, publishing to
// the bus, with a notification consumer whose holder calls go through a switchable proxy
// in front of the ticket service.
type platform struct {
	t         *testing.T
	bus       *bus
	eventURL  string
	ticketURL string
	proxy     *switchable
	pool      *pgxpool.Pool // the notification database
	group     string
}

func newPlatform(t *testing.T, holderPageSize int) *platform {
	t.Helper()
	b := newBus(t, 3)
	p := &platform{t: t, bus: b}
	p.eventURL = serve(t, func(ctx context.Context, ln net.Listener) error {
		return event.Run(ctx, testLogger(t), event.Config{
			DatabaseURL: pgtest.NewDatabase(t), MaxConns: 4, Migrate: true,
			KafkaBrokers: b.brokers, TopicPrefix: b.prefix, CreateTopics: true, Partitions: 3, ReplicationFactor: 1,
		}, ln)
	})
	p.ticketURL = serve(t, func(ctx context.Context, ln net.Listener) error {
		return ticket.Run(ctx, testLogger(t), ticket.Config{
			DatabaseURL: pgtest.NewDatabase(t), MaxConns: 4, Migrate: true, EventURL: p.eventURL,
			KafkaBrokers: b.brokers, TopicPrefix: b.prefix, CreateTopics: true, Partitions: 3, ReplicationFactor: 1,
			ConsumerGroup: "ticket-" + b.prefix,
		}, ln)
	})
	p.proxy = newSwitchable(t, p.ticketURL)

	// The consumer is assembled by hand, as Run does, to page holders two at a time.
	p.pool = migratedPool(t)
	log := testLogger(t)
	store := notification.NewStore(p.pool)
	core := notification.NewCore(store, notification.NewTicketClient(p.proxy.url), log)
	core.HolderPageSize = holderPageSize
	handler := &notification.MessageHandler{Core: core, Store: store, TopicPrefix: b.prefix, Log: log}
	p.group = "notification-" + b.prefix
	consumer := notification.NewConsumer(handler, b.brokers, p.group)
	consumer.MaxBackoff = 500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consumer.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// serve runs a service on a loopback listener until the test ends and returns its URL, once
// the service is ready.
func serve(t *testing.T, run func(ctx context.Context, ln net.Listener) error) string {
	t.Helper()
	u := testkit.ServeLoopback(t, run)
	waitHTTP(t, u+"/readyz")
	return u
}

// switchable forwards to a service, or, while down, drops every connection as a service
// that is not there would. failIn > 0 answers the failIn-th request from now with a 503,
// once: a failure in the middle of paging.
type switchable struct {
	url     string
	down    atomic.Bool
	failIn  atomic.Int64
	refused atomic.Int64
	served  atomic.Int64
}

func newSwitchable(t *testing.T, target string) *switchable {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	s := &switchable{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			s.refused.Add(1)
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if s.failIn.Add(-1) == 0 {
			s.refused.Add(1)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status": 503, "code": "database_unavailable"}`))
			return
		}
		s.served.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

// call sends a JSON request as id to a service and decodes the answer into out.
func (p *platform) call(method, url string, as identity.Identity, body any, want int, out any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if as.UserID != uuid.Nil {
		identity.SetHeaders(req.Header, as)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
}

type boughtTicket struct {
	ID          string    `json:"id"`
	Code        string    `json:"code"`
	UserID      string    `json:"user_id"`
	PurchasedAt time.Time `json:"purchased_at"`
}

// publishedEvent creates and publishes an event with one ticket type on sale; it returns
// the event id and the ticket type id.
func (p *platform) publishedEvent(organizer identity.Identity, title string, startsAt time.Time) (string, string) {
	p.t.Helper()
	var ev struct{ ID string }
	p.call("POST", p.eventURL+"/api/events", organizer, map[string]any{
		"title": title, "description": "An evening of Go.", "venue": "Main Hall",
		"starts_at": startsAt, "ends_at": startsAt.Add(2 * time.Hour),
	}, http.StatusCreated, &ev)
	p.call("POST", p.eventURL+"/api/events/"+ev.ID+"/publish", organizer, nil, http.StatusOK, nil)
	var tt struct{ ID string }
	p.call("POST", p.ticketURL+"/api/events/"+ev.ID+"/ticket-types", organizer, map[string]any{
		"type": "vip", "price_cents": 5000, "currency": "EUR", "quantity": 100000,
		"sales_start": time.Now().Add(-time.Minute), "sales_end": startsAt.Add(-time.Hour),
	}, http.StatusCreated, &tt)
	return ev.ID, tt.ID
}

func (p *platform) buy(buyer identity.Identity, eventID, typeID string) boughtTicket {
	p.t.Helper()
	var tk boughtTicket
	p.call("POST", p.ticketURL+"/api/events/"+eventID+"/tickets", buyer, map[string]any{"ticket_type_id": typeID}, http.StatusCreated, &tk)
	return tk
}

// notified returns how many notifications of typ each user has for the event.
func (p *platform) notified(typ notification.Type, eventID string) map[uuid.UUID]int {
	p.t.Helper()
	rows, err := p.pool.Query(context.Background(),
		`SELECT user_id, count(*) FROM notifications WHERE type = $1 AND event_id = $2 GROUP BY user_id`, string(typ), eventID)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]int{}
	for rows.Next() {
		var u uuid.UUID
		var n int
		if err := rows.Scan(&u, &n); err != nil {
			p.t.Fatal(err)
		}
		out[u] = n
	}
	return out
}

func newUser(role identity.Role) identity.Identity {
	return identity.Identity{UserID: uuid.New(), Role: role}
}

// TestCancellationRetriedUntilTicketServiceAnswers: the ticket service is unreachable when
// the cancellation arrives; the consumer retries without committing, and once the service is
// back every holder is notified exactly once, however many tickets and pages they span.
func TestCancellationRetriedUntilTicketServiceAnswers(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, 2)
	organizer := newUser(identity.RoleOrganizer)
	eventID, typeID := p.publishedEvent(organizer, "Go Meetup", time.Date(2030, 12, 12, 19, 0, 0, 0, time.UTC))

	alice, bob, carol, dave := newUser(identity.RoleUser), newUser(identity.RoleUser), newUser(identity.RoleUser), newUser(identity.RoleUser)
	var bought []boughtTicket
	// Alice's three tickets are spread over the pages of two.
	for _, u := range []identity.Identity{alice, bob, alice, carol, dave, alice, dave} {
		bought = append(bought, p.buy(u, eventID, typeID))
	}

	// Every purchase is announced to its buyer, through the ticket service's outbox and Kafka.
	eventually(t, 30*time.Second, "purchase notifications", func() (bool, string) {
		n := count(t, p.pool, `SELECT count(*) FROM notifications WHERE type = 'ticket.purchased'`)
		return n == len(bought), fmt.Sprint(n, " of ", len(bought))
	})
	logPurchaseDelays(t, p.pool, bought)

	p.proxy.down.Store(true)
	p.call("POST", p.eventURL+"/api/events/"+eventID+"/cancel", organizer, nil, http.StatusOK, nil)
	eventually(t, 30*time.Second, "retries against the unreachable ticket service", func() (bool, string) {
		n := p.proxy.refused.Load()
		return n >= 3, fmt.Sprint(n, " refused calls")
	})
	if got := p.notified(notification.TypeEventCancelled, eventID); len(got) != 0 {
		t.Fatalf("notified %v while the holders could not be listed", got)
	}

	// Back, but the third page of the first full attempt fails (503): the first two pages are
	// stored, the message is handled again from the first page, and nobody is notified twice.
	refused := p.proxy.refused.Load()
	p.proxy.failIn.Store(3)
	p.proxy.down.Store(false)
	eventually(t, 30*time.Second, "cancellation notifications", func() (bool, string) {
		got := p.notified(notification.TypeEventCancelled, eventID)
		return len(got) == 4, fmt.Sprint(got)
	})
	p.bus.waitCaughtUp(p.group)
	if p.proxy.refused.Load() != refused+1 {
		t.Fatalf("the mid-paging failure did not happen: %d refused calls, want %d", p.proxy.refused.Load(), refused+1)
	}
	got := p.notified(notification.TypeEventCancelled, eventID)
	for _, u := range []identity.Identity{alice, bob, carol, dave} {
		if got[u.UserID] != 1 {
			t.Errorf("user %s has %d cancellation notifications, want 1 (all: %v)", u.UserID, got[u.UserID], got)
		}
	}

	var title, body string
	var ticketID *uuid.UUID
	err := p.pool.QueryRow(context.Background(),
		`SELECT title, body, ticket_id FROM notifications WHERE type = 'event.cancelled' AND user_id = $1`, alice.UserID).Scan(&title, &body, &ticketID)
	if err != nil {
		t.Fatal(err)
	}
	if title != "Event cancelled" || ticketID != nil ||
		body != "“Go Meetup” on 12 Dec 2030 at 19:00 UTC has been cancelled. Your tickets are no longer valid." {
		t.Errorf("cancellation notification = %q / %q / ticket %v", title, body, ticketID)
	}
}

// TestReminderNotifiesActiveHoldersOnly: a holder whose only ticket was used (checked in) is
// not reminded; holders of active tickets are, once each.
func TestReminderNotifiesActiveHoldersOnly(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, 2)
	organizer := newUser(identity.RoleOrganizer)
	startsAt := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Minute)
	eventID, typeID := p.publishedEvent(organizer, "Rust Night", startsAt)

	alice, bob, carol := newUser(identity.RoleUser), newUser(identity.RoleUser), newUser(identity.RoleUser)
	p.buy(alice, eventID, typeID)
	p.buy(alice, eventID, typeID)
	used := p.buy(bob, eventID, typeID)
	p.buy(carol, eventID, typeID)
	p.call("POST", p.ticketURL+"/api/tickets/"+used.Code+"/checkin", organizer, nil, http.StatusOK, nil)

	var remind struct{ Sent bool }
	p.call("POST", p.eventURL+"/internal/events/"+eventID+"/remind", identity.Identity{}, nil, http.StatusOK, &remind)
	if !remind.Sent {
		t.Fatal("the event service sent no reminder")
	}
	eventually(t, 30*time.Second, "reminders", func() (bool, string) {
		got := p.notified(notification.TypeEventReminder, eventID)
		return len(got) == 2, fmt.Sprint(got)
	})
	p.bus.waitCaughtUp(p.group)
	got := p.notified(notification.TypeEventReminder, eventID)
	if got[alice.UserID] != 1 || got[carol.UserID] != 1 || got[bob.UserID] != 0 {
		t.Fatalf("reminders per user = %v; want alice 1, carol 1, bob (used ticket) 0", got)
	}
	var body string
	if err := p.pool.QueryRow(context.Background(),
		`SELECT body FROM notifications WHERE type = 'event.reminder' AND user_id = $1`, carol.UserID).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if want := "“Rust Night” starts on " + startsAt.Format("2 Jan 2006 at 15:04") + " UTC at Main Hall."; body != want {
		t.Fatalf("reminder body %q, want %q", body, want)
	}
}

// logPurchaseDelays logs, for the record (no assertion: timing depends on the machine), the
// delay from each purchase's commit to its notification being stored.
func logPurchaseDelays(t *testing.T, pool *pgxpool.Pool, bought []boughtTicket) {
	t.Helper()
	var delays []time.Duration
	for _, b := range bought {
		var created time.Time
		if err := pool.QueryRow(context.Background(),
			`SELECT created_at FROM notifications WHERE type = 'ticket.purchased' AND ticket_id = $1`, b.ID).Scan(&created); err != nil {
			t.Fatal(err)
		}
		delays = append(delays, created.Sub(b.PurchasedAt))
	}
	slices.Sort(delays)
	t.Logf("purchase → notification stored, %d purchases: min %v, median %v, max %v",
		len(delays), delays[0], delays[len(delays)/2], delays[len(delays)-1])
}
