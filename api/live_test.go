package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/api"
	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/platform/web"
	"github.com/sbor-dev/sbor/internal/testkit"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/event"
	"github.com/sbor-dev/sbor/services/gateway"
	"github.com/sbor-dev/sbor/services/notification"
	"github.com/sbor-dev/sbor/services/ticket"
	"github.com/sbor-dev/sbor/services/user"
)

// liveAPI is the real gateway in front of the real services' HTTP handlers, each on its own
// PostgreSQL database. Kafka is not needed to serve the API (state changes only write the
// outbox), so notifications are made by calling the notification service's core the way its
// consumer would. Every response is checked against the document.
type liveAPI struct {
	t         *testing.T
	url       string
	validator *api.Validator
	notify    *notification.Core

	mu   sync.Mutex
	seen map[string]map[int]bool // route key → statuses answered
}

func migratedPool(t *testing.T, sets []db.Migrations) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(context.Background(), pool, sets...); err != nil {
		t.Fatal(err)
	}
	return pool
}

func serve(t *testing.T, log *slog.Logger, mount func(chi.Router)) *httptest.Server {
	t.Helper()
	r := web.NewRouter(log)
	mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func newLiveAPI(t *testing.T, loginsPerAccount int) *liveAPI {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	v, err := api.NewResponseValidator()
	if err != nil {
		t.Fatal(err)
	}

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	userCore := user.NewCore(user.NewStore(migratedPool(t, user.Migrations())),
		token.NewSigner(key, token.DefaultIssuer, token.DefaultAudience, 15*time.Minute), time.Hour,
		// Login windows are fixed: a long one never starts anew mid-test.
		user.Limits{Window: 30 * 24 * time.Hour, PerIP: 1000, PerAccount: loginsPerAccount})
	userSrv := serve(t, log, func(r chi.Router) { user.Routes(r, userCore) })

	eventCore := event.NewCore(event.NewStore(migratedPool(t, event.Migrations())))
	eventSrv := serve(t, log, func(r chi.Router) { event.Routes(r, eventCore) })

	events := ticket.NewEventClient(eventSrv.URL, 0)
	t.Cleanup(events.Close)
	ticketStore := ticket.NewStore(migratedPool(t, ticket.Migrations()))
	ticketCore := ticket.NewCore(ticketStore, events)
	users := ticket.NewUserClient(userSrv.URL, 0)
	t.Cleanup(users.Close)
	ticketSrv := serve(t, log, func(r chi.Router) {
		ticket.Routes(r, ticketCore)
		ticket.TransferRoutes(r, ticket.NewTransfers(ticketCore, users))
		ticket.StaffRoutes(r, ticket.NewStaff(ticketStore, events, users, 0))
	})

	notifyCore := notification.NewCore(notification.NewStore(migratedPool(t, notification.Migrations())),
		notification.NewTicketClient(ticketSrv.URL), log)
	notifySrv := serve(t, log, func(r chi.Router) { notification.Routes(r, notifyCore) })

	verifier := &token.Verifier{
		Keys:   &token.RemoteKeys{URL: userSrv.URL + "/internal/jwks", MinRefresh: time.Second},
		Issuer: token.DefaultIssuer, Audience: token.DefaultAudience,
	}
	g, err := gateway.New(log, gateway.Config{Upstreams: map[gateway.Upstream]string{
		gateway.UpstreamUser: userSrv.URL, gateway.UpstreamEvent: eventSrv.URL,
		gateway.UpstreamTicket: ticketSrv.URL, gateway.UpstreamNotification: notifySrv.URL,
	}}, verifier, gateway.MountDocs)
	if err != nil {
		t.Fatal(err)
	}
	return &liveAPI{t: t, url: testkit.ServeLoopback(t, g.Serve), validator: v, notify: notifyCore, seen: map[string]map[int]bool{}}
}

type answer struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (a answer) str(key string) string { s, _ := a.json[key].(string); return s }

// call sends a request through the gateway, checks the answer against the document and
// that its status is want.
func (l *liveAPI) call(want int, method, path, bearer string, body any, header ...string) answer {
	l.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			l.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, l.url+path, rd)
	if err != nil {
		l.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	a.body, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(a.body, &a.json)
	if a.status != want {
		l.t.Errorf("%s %s: status %d, want %d: %s", method, path, a.status, want, a.body)
	}
	if err := l.validator.Validate(method, path, a.status, a.header, a.body); err != nil {
		l.t.Errorf("%s %s: the answer does not match the document: %v", method, path, err)
	}
	l.record(method, path, a.status)
	return a
}

// record notes which operation of the gateway's table answered which status.
func (l *liveAPI) record(method, path string, status int) {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	for _, rt := range gateway.Routes {
		pat := strings.Split(rt.Pattern, "/")
		if rt.Method != method || len(pat) != len(segs) {
			continue
		}
		match := true
		for i := range pat {
			if !strings.HasPrefix(pat[i], "{") && pat[i] != segs[i] {
				match = false
			}
		}
		if match {
			l.mu.Lock()
			k := routeKey(rt.Method, rt.Pattern)
			if l.seen[k] == nil {
				l.seen[k] = map[int]bool{}
			}
			l.seen[k][status] = true
			l.mu.Unlock()
			return
		}
	}
}

func (l *liveAPI) signUp(name string) (email, access, refresh string) {
	l.t.Helper()
	email = strings.ToLower(name) + "-" + uuid.NewString()[:8] + "@example.com"
	l.call(201, "POST", "/api/auth/register", "", map[string]string{"email": email, "name": name, "password": "correct-horse-9"})
	pair := l.call(200, "POST", "/api/auth/login", "", map[string]string{"email": email, "password": "correct-horse-9"})
	return email, pair.str("access_token"), pair.str("refresh_token")
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// TestServicesAnswerAsDocumented drives every public operation of the real services through
// the real gateway, successes and the errors DESIGN.md names, and checks each answer against
// the document.
func TestServicesAnswerAsDocumented(t *testing.T) {
	l := newLiveAPI(t, 3)
	junk := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"

	// Auth and users.
	annEmail, ann, annRefresh := l.signUp("Ann")
	l.call(409, "POST", "/api/auth/register", "", map[string]string{"email": annEmail, "name": "Ann", "password": "correct-horse-9"})
	l.call(400, "POST", "/api/auth/register", "", map[string]string{"email": "nope", "name": "", "password": "short"})
	l.call(400, "POST", "/api/auth/register", "", map[string]any{"email": "x@example.com", "name": "X", "password": "correct-horse-9", "role": "organizer"})
	l.call(400, "POST", "/api/auth/register", "", []byte(`{"email": `))
	l.call(401, "POST", "/api/auth/register", junk, map[string]string{"email": "y@example.com", "name": "Y", "password": "correct-horse-9"})
	l.call(415, "POST", "/api/auth/register", "", []byte(`email=a`), "Content-Type", "application/x-www-form-urlencoded")
	l.call(413, "POST", "/api/auth/register", "", []byte(`{"name":"`+strings.Repeat("x", 100<<10)+`"}`))
	l.call(413, "POST", "/api/auth/register", "", []byte(`{"name":"`+strings.Repeat("x", 2<<20)+`"}`))
	l.call(401, "POST", "/api/auth/login", "", map[string]string{"email": annEmail, "password": "wrong-password-1"})
	victim, _, _ := l.signUp("Victim")
	for range 3 {
		l.call(401, "POST", "/api/auth/login", "", map[string]string{"email": victim, "password": "guessing-123"})
	}
	l.call(429, "POST", "/api/auth/login", "", map[string]string{"email": victim, "password": "guessing-123"})
	pair := l.call(200, "POST", "/api/auth/refresh", "", map[string]string{"refresh_token": annRefresh})
	l.call(401, "POST", "/api/auth/refresh", "", map[string]string{"refresh_token": annRefresh})
	l.call(204, "POST", "/api/auth/logout", "", map[string]string{"refresh_token": pair.str("refresh_token")})
	l.call(200, "GET", "/api/users/me", ann, nil)
	l.call(401, "GET", "/api/users/me", "", nil)
	l.call(401, "GET", "/api/users/me", junk, nil)
	_, olgaUser, _ := l.signUp("Olga")
	olga := l.call(200, "POST", "/api/users/me/become-organizer", olgaUser, nil).str("access_token")
	_, oscarUser, _ := l.signUp("Oscar")
	oscar := l.call(200, "POST", "/api/users/me/become-organizer", oscarUser, nil).str("access_token")

	// Events.
	start := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	newEvent := map[string]string{"title": "Go meetup", "description": "Talks", "venue": "Tbilisi", "starts_at": rfc3339(start), "ends_at": rfc3339(start.Add(3 * time.Hour))}
	l.call(403, "POST", "/api/events", ann, newEvent)
	l.call(401, "POST", "/api/events", "", newEvent)
	l.call(400, "POST", "/api/events", olga, map[string]string{"title": " ", "starts_at": rfc3339(time.Now().Add(-time.Hour)), "ends_at": rfc3339(start)})
	id := l.call(201, "POST", "/api/events", olga, newEvent).str("id")
	l.call(404, "GET", "/api/events/"+id, "", nil)
	l.call(404, "GET", "/api/events/not-an-id", "", nil)
	l.call(200, "GET", "/api/events/"+id, olga, nil)
	l.call(401, "GET", "/api/events/"+id, junk, nil)
	l.call(200, "GET", "/api/events", "", nil)
	l.call(200, "GET", "/api/events?organizer=me&limit=1", olga, nil)
	l.call(401, "GET", "/api/events?organizer=me", "", nil)
	l.call(400, "GET", "/api/events?limit=0", "", nil)
	l.call(400, "GET", "/api/events?cursor=nope", "", nil)
	l.call(400, "GET", "/api/events?organizer=you", "", nil)
	l.call(403, "PUT", "/api/events/"+id, oscar, newEvent)
	l.call(404, "PUT", "/api/events/"+uuid.NewString(), olga, newEvent)
	newEvent["title"] = "Go meetup (room 2)"
	l.call(200, "PUT", "/api/events/"+id, olga, newEvent)
	l.call(400, "PUT", "/api/events/"+id, olga, map[string]string{"title": "x"})
	tt := func(kind string, quantity int) map[string]any {
		return map[string]any{"type": kind, "price_cents": 2500, "currency": "EUR", "quantity": quantity,
			"sales_start": rfc3339(time.Now().Add(-time.Minute)), "sales_end": rfc3339(start)}
	}
	l.call(409, "POST", "/api/events/"+id+"/ticket-types", olga, tt("standard", 5))
	l.call(403, "POST", "/api/events/"+id+"/publish", oscar, nil)
	l.call(404, "POST", "/api/events/"+uuid.NewString()+"/publish", olga, nil)
	l.call(200, "POST", "/api/events/"+id+"/publish", olga, nil)
	l.call(409, "POST", "/api/events/"+id+"/publish", olga, nil)
	l.call(409, "PUT", "/api/events/"+id, olga, newEvent)
	l.call(200, "GET", "/api/events/"+id, "", nil)

	// Ticket types.
	l.call(403, "POST", "/api/events/"+id+"/ticket-types", oscar, tt("standard", 5))
	l.call(404, "POST", "/api/events/"+uuid.NewString()+"/ticket-types", olga, tt("standard", 5))
	l.call(400, "POST", "/api/events/"+id+"/ticket-types", olga, tt("platinum", 0))
	standard := l.call(201, "POST", "/api/events/"+id+"/ticket-types", olga, tt("standard", 5)).str("id")
	l.call(409, "POST", "/api/events/"+id+"/ticket-types", olga, tt("standard", 5))
	vip := l.call(201, "POST", "/api/events/"+id+"/ticket-types", olga, tt("vip", 1)).str("id")
	l.call(200, "GET", "/api/events/"+id+"/ticket-types", "", nil)
	l.call(404, "GET", "/api/events/not-an-id/ticket-types", "", nil)

	// Door staff and live counts.
	doraEmail, dora, _ := l.signUp("Dora")
	l.call(400, "POST", "/api/events/"+id+"/staff", olga, map[string]any{"email": 7})
	l.call(422, "POST", "/api/events/"+id+"/staff", olga, map[string]string{"email": "nobody-" + uuid.NewString()[:8] + "@example.com"})
	l.call(404, "POST", "/api/events/"+id+"/staff", oscar, map[string]string{"email": doraEmail})
	doraID := l.call(201, "POST", "/api/events/"+id+"/staff", olga, map[string]string{"email": doraEmail}).str("user_id")
	l.call(200, "POST", "/api/events/"+id+"/staff", olga, map[string]string{"email": doraEmail})
	l.call(200, "GET", "/api/events/"+id+"/staff", olga, nil)
	l.call(404, "GET", "/api/events/"+id+"/staff", oscar, nil)
	l.call(200, "GET", "/api/staff/events", dora, nil)
	l.call(200, "GET", "/api/events/"+id+"/stats", dora, nil)
	l.call(404, "GET", "/api/events/"+id+"/stats", oscar, nil)
	l.call(404, "DELETE", "/api/events/"+id+"/staff/"+doraID, oscar, nil)
	l.call(204, "DELETE", "/api/events/"+id+"/staff/"+doraID, olga, nil)
	l.call(204, "DELETE", "/api/events/"+id+"/staff/"+doraID, olga, nil)

	// Tickets.
	bought := l.call(201, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": standard}, "Idempotency-Key", "k1")
	replay := l.call(201, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": standard}, "Idempotency-Key", "k1")
	if replay.header.Get("Idempotency-Replayed") != "true" || replay.str("id") != bought.str("id") {
		t.Errorf("the retry did not replay the purchase: %s", replay.body)
	}
	l.call(422, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": vip}, "Idempotency-Key", "k1")
	l.call(400, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": "nope"})
	l.call(400, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": vip}, "Idempotency-Key", strings.Repeat("k", 201))
	l.call(404, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": uuid.NewString()})
	l.call(201, "POST", "/api/events/"+id+"/tickets", oscar, map[string]string{"ticket_type_id": vip})
	l.call(409, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": vip})
	l.call(200, "GET", "/api/tickets?limit=1", ann, nil)
	l.call(400, "GET", "/api/tickets?cursor=nope", ann, nil)
	l.call(200, "GET", "/api/events/"+id+"/tickets", olga, nil)
	l.call(403, "GET", "/api/events/"+id+"/tickets", ann, nil)
	l.call(404, "GET", "/api/events/"+uuid.NewString()+"/tickets", olga, nil)
	l.call(400, "GET", "/api/events/"+id+"/tickets?limit=101", olga, nil)
	ticketID, code := bought.str("id"), bought.str("code")
	l.call(200, "GET", "/api/tickets/"+ticketID+"/qr", ann, nil)
	l.call(404, "GET", "/api/tickets/"+ticketID+"/qr", oscar, nil)
	l.call(200, "POST", "/api/tickets/"+code+"/validate", olga, nil)
	l.call(403, "POST", "/api/tickets/"+code+"/validate", oscar, nil)
	l.call(404, "POST", "/api/tickets/not-a-code/validate", olga, nil)
	l.call(200, "POST", "/api/tickets/"+strings.ToLower(code)+"/checkin", olga, nil)
	l.call(409, "POST", "/api/tickets/"+code+"/checkin", olga, nil)
	l.call(403, "POST", "/api/tickets/"+code+"/checkin", ann, nil)
	l.call(404, "POST", "/api/tickets/ABCDEFGHJKMNPQRSTVWXYZ0123/checkin", olga, nil)
	l.call(200, "POST", "/api/tickets/"+code+"/validate", olga, nil)

	// Transfers: ann gives a ticket to tom.
	tomEmail, tom, _ := l.signUp("Tom")
	given := l.call(201, "POST", "/api/events/"+id+"/tickets", ann, map[string]string{"ticket_type_id": standard}).str("id")
	l.call(400, "POST", "/api/tickets/"+given+"/transfer", ann, map[string]any{"email": 7})
	l.call(404, "POST", "/api/tickets/"+given+"/transfer", oscar, map[string]string{"email": tomEmail})
	l.call(422, "POST", "/api/tickets/"+given+"/transfer", ann, map[string]string{"email": "nobody-" + uuid.NewString()[:8] + "@example.com"})
	l.call(422, "POST", "/api/tickets/"+given+"/transfer", ann, map[string]string{"email": annEmail})
	l.call(409, "POST", "/api/tickets/"+ticketID+"/transfer", ann, map[string]string{"email": tomEmail}) // used
	l.call(200, "POST", "/api/tickets/"+given+"/transfer", ann, map[string]string{"email": tomEmail})
	l.call(409, "POST", "/api/tickets/"+given+"/transfer", ann, map[string]string{"email": tomEmail})
	received, _ := l.call(200, "GET", "/api/tickets", tom, nil).json["items"].([]any)
	if len(received) != 1 {
		t.Fatalf("tom's tickets after the transfer: %v", received)
	}
	tomTicket := received[0].(map[string]any)["id"].(string)

	// Notifications, made as the consumers would from ticket.purchased and event.reminder.
	annID := uuid.MustParse(l.call(200, "GET", "/api/users/me", ann, nil).str("id"))
	ctx := context.Background()
	if err := l.notify.TicketPurchased(ctx, notification.Source{ID: uuid.NewString(), Time: time.Now()}, cloudevent.TicketData{
		TicketID: uuid.MustParse(ticketID), EventID: uuid.MustParse(id), TicketTypeID: uuid.MustParse(standard), UserID: annID,
		EventTitle: "Go meetup", TicketType: "standard", PurchasedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.notify.EventReminder(ctx, notification.Source{ID: uuid.NewString(), Time: time.Now()}, cloudevent.EventData{
		EventID: uuid.MustParse(id), Title: "Go meetup", StartsAt: start, EndsAt: start.Add(3 * time.Hour), Status: "published",
	}); err != nil {
		t.Fatal(err)
	}
	list := l.call(200, "GET", "/api/notifications?limit=1", ann, nil)
	l.call(200, "GET", "/api/notifications?cursor="+list.str("next_cursor"), ann, nil)
	l.call(400, "GET", "/api/notifications?limit=x", ann, nil)
	l.call(200, "GET", "/api/notifications/unread-count", ann, nil)
	items, _ := list.json["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("notifications: %s", list.body)
	}
	nid := items[0].(map[string]any)["id"].(string)
	l.call(404, "POST", "/api/notifications/"+nid+"/read", oscar, nil)
	l.call(200, "POST", "/api/notifications/"+nid+"/read", ann, nil)
	l.call(401, "GET", "/api/notifications", "", nil)

	// Cancellation.
	l.call(403, "POST", "/api/events/"+id+"/cancel", oscar, nil)
	l.call(200, "POST", "/api/events/"+id+"/cancel", olga, nil)
	l.call(409, "POST", "/api/events/"+id+"/cancel", olga, nil)
	l.call(409, "POST", "/api/events/"+id+"/ticket-types", olga, tt("early_bird", 5))
	l.call(409, "POST", "/api/tickets/"+tomTicket+"/transfer", tom, map[string]string{"email": annEmail})

	// Signed codes (issue 10): validate takes the signed code (a forged one is
	// bad_signature); the scanner's key and revocation list are the organizer's.
	signed := bought.str("signed_code")
	forged := signed[:len(signed)-1] + map[bool]string{true: "Q", false: "A"}[strings.HasSuffix(signed, "A")]
	l.call(200, "POST", "/api/tickets/"+signed+"/validate", olga, nil)
	l.call(200, "POST", "/api/tickets/"+forged+"/validate", olga, nil)
	l.call(404, "POST", "/api/tickets/"+forged+"/checkin", olga, nil)
	l.call(200, "GET", "/api/events/"+id+"/scanner-keys", olga, nil)
	l.call(404, "GET", "/api/events/"+id+"/scanner-keys", oscar, nil)
	l.call(200, "GET", "/api/events/"+id+"/revocations", olga, nil)
	l.call(200, "GET", "/api/events/"+id+"/revocations?since=1", olga, nil)
	l.call(400, "GET", "/api/events/"+id+"/revocations?since=x", olga, nil)
	l.call(404, "GET", "/api/events/"+id+"/revocations", ann, nil)

	// Every operation was exercised and answered a success at least once.
	for _, rt := range gateway.Routes {
		k := routeKey(rt.Method, rt.Pattern)
		var ok []int
		for st := range l.seen[k] {
			if st < 300 {
				ok = append(ok, st)
			}
		}
		if len(ok) == 0 {
			t.Errorf("%s: no successful answer was checked", k)
		}
	}
	var summary []string
	for k, sts := range l.seen {
		var list []string
		for st := range sts {
			list = append(list, strconv.Itoa(st))
		}
		slices.Sort(list)
		summary = append(summary, fmt.Sprintf("%s %v", k, list))
	}
	slices.Sort(summary)
	t.Logf("statuses checked against the document:\n%s", strings.Join(summary, "\n"))
}
