package notification_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/web"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/notification"
)

// api is a notification service's HTTP API on a fresh database, called as the gateway would
// call it. The notifications it lists are stored through the Core, as the consumer does.
type api struct {
	t    *testing.T
	url  string
	pool *pgxpool.Pool
	core *notification.Core
}

func newAPI(t *testing.T) *api {
	t.Helper()
	pool := migratedPool(t)
	log := slog.New(slog.DiscardHandler)
	core := notification.NewCore(notification.NewStore(pool), nil, log)
	r := web.NewRouter(log)
	notification.Routes(r, core)
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return &api{t: t, url: ts.URL, pool: pool, core: core}
}

func migratedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(context.Background(), pool, notification.Migrations()...); err != nil {
		t.Fatal(err)
	}
	return pool
}

func userIdentity() identity.Identity {
	return identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
}

// purchase stores a ticket-purchased notification for user and returns the ticket id.
func (a *api) purchase(user uuid.UUID, title string) uuid.UUID {
	a.t.Helper()
	ticket := uuid.New()
	err := a.core.TicketPurchased(context.Background(), notification.Source{ID: uuid.NewString(), Time: time.Now()},
		cloudevent.TicketData{TicketID: ticket, EventID: uuid.New(), UserID: user, EventTitle: title, TicketType: "vip"})
	if err != nil {
		a.t.Fatal(err)
	}
	return ticket
}

// do sends a request; as, when set, is the identity the gateway would put in headers.
func (a *api) do(method, path string, as *identity.Identity) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, nil)
	if as != nil {
		identity.SetHeaders(req.Header, *as)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			a.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		a.t.Fatalf("%s %s: error without problem+json: %d %s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, out
}

func (a *api) expect(method, path string, as *identity.Identity, want int) map[string]any {
	a.t.Helper()
	got, body := a.do(method, path, as)
	if got != want {
		a.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, want, body)
	}
	return body
}

func items(body map[string]any) []map[string]any {
	raw, _ := body["items"].([]any)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i], _ = v.(map[string]any)
	}
	return out
}

func TestListNotifications(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	alice, bob := userIdentity(), userIdentity()

	a.expect("GET", "/api/notifications", nil, http.StatusUnauthorized)
	empty := a.expect("GET", "/api/notifications", &alice, http.StatusOK)
	if list, ok := empty["items"].([]any); !ok || len(list) != 0 || empty["next_cursor"] != "" {
		t.Fatalf("empty list = %v, want items [] and next_cursor \"\"", empty)
	}

	var tickets []uuid.UUID
	for i := range 5 {
		tickets = append(tickets, a.purchase(alice.UserID, fmt.Sprintf("Event %d", i)))
	}
	a.purchase(bob.UserID, "Bob's event")

	// Newest first, paged by two, nobody else's.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		body := a.expect("GET", "/api/notifications?limit=2&cursor="+cursor, &alice, http.StatusOK)
		for _, n := range items(body) {
			seen = append(seen, n["ticket_id"].(string))
		}
		cursor, _ = body["next_cursor"].(string)
		if cursor == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 5 {
		t.Fatalf("alice sees %d notifications, want 5: %v", len(seen), seen)
	}
	for i, id := range seen {
		if want := tickets[4-i].String(); id != want {
			t.Fatalf("notification %d is for ticket %s, want %s (newest first)", i, id, want)
		}
	}

	// The JSON shape of DESIGN.md section 3.
	n := items(a.expect("GET", "/api/notifications?limit=1", &alice, http.StatusOK))[0]
	if n["type"] != "ticket.purchased" || n["title"] != "Ticket purchased" ||
		n["body"] != "Your VIP ticket for “Event 4” is confirmed." || n["read_at"] != nil {
		t.Fatalf("notification = %v", n)
	}
	for _, field := range []string{"id", "event_id", "ticket_id", "created_at"} {
		if s, _ := n[field].(string); s == "" {
			t.Fatalf("notification has no %s: %v", field, n)
		}
	}
	if _, err := time.Parse(time.RFC3339, n["created_at"].(string)); err != nil || n["created_at"].(string)[len(n["created_at"].(string))-1] != 'Z' {
		t.Fatalf("created_at %v is not RFC 3339 UTC", n["created_at"])
	}

	for _, bad := range []string{"limit=0", "limit=101", "limit=ten", "limit=-1", "cursor=not-a-cursor", "cursor=AAAA"} {
		body := a.expect("GET", "/api/notifications?"+bad, &alice, http.StatusBadRequest)
		if body["code"] != "invalid_limit" && body["code"] != "invalid_cursor" {
			t.Fatalf("%s: code %v", bad, body["code"])
		}
	}
	a.expect("DELETE", "/api/notifications", &alice, http.StatusMethodNotAllowed)
}

func TestCancellationNotificationHasNoTicket(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	alice := userIdentity()
	store := notification.NewStore(a.pool)
	_, err := store.Insert(context.Background(), []notification.Notification{{
		ID: uuid.New(), UserID: alice.UserID, Type: notification.TypeEventCancelled, Title: "Event cancelled",
		Body: "“Go Meetup” has been cancelled.", EventID: uuid.New(), SourceID: uuid.NewString(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := items(a.expect("GET", "/api/notifications", &alice, http.StatusOK))[0]
	if v, present := n["ticket_id"]; !present || v != nil {
		t.Fatalf("ticket_id = %v (present %v), want null", v, present)
	}
}

func TestMarkRead(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	alice, bob := userIdentity(), userIdentity()
	a.purchase(alice.UserID, "A")
	a.purchase(alice.UserID, "B")
	a.purchase(bob.UserID, "C")
	id := items(a.expect("GET", "/api/notifications", &alice, http.StatusOK))[0]["id"].(string)
	path := "/api/notifications/" + id + "/read"

	a.expect("POST", path, nil, http.StatusUnauthorized)
	// Anyone else's notification is as absent as an unknown one.
	if body := a.expect("POST", path, &bob, http.StatusNotFound); body["code"] != "notification_not_found" {
		t.Fatalf("bob reading alice's: %v", body)
	}
	a.expect("POST", "/api/notifications/"+uuid.NewString()+"/read", &alice, http.StatusNotFound)
	a.expect("POST", "/api/notifications/not-a-uuid/read", &alice, http.StatusNotFound)
	a.expect("GET", path, &alice, http.StatusMethodNotAllowed)

	if got := a.expect("GET", "/api/notifications/unread-count", &alice, http.StatusOK)["unread"]; got != 2.0 {
		t.Fatalf("alice's unread = %v, want 2", got)
	}
	first := a.expect("POST", path, &alice, http.StatusOK)
	if first["id"] != id || first["read_at"] == nil {
		t.Fatalf("read answer = %v", first)
	}
	// Idempotent: a second read succeeds and keeps the first read time.
	second := a.expect("POST", path, &alice, http.StatusOK)
	if second["read_at"] != first["read_at"] {
		t.Fatalf("read_at moved from %v to %v", first["read_at"], second["read_at"])
	}
	if got := a.expect("GET", "/api/notifications/unread-count", &alice, http.StatusOK)["unread"]; got != 1.0 {
		t.Fatalf("alice's unread after a read = %v, want 1", got)
	}
	if got := a.expect("GET", "/api/notifications/unread-count", &bob, http.StatusOK)["unread"]; got != 1.0 {
		t.Fatalf("bob's unread = %v, want 1", got)
	}
	listed := items(a.expect("GET", "/api/notifications", &alice, http.StatusOK))[0]
	if listed["read_at"] != first["read_at"] {
		t.Fatalf("listed read_at = %v, want %v", listed["read_at"], first["read_at"])
	}
}

func TestUnreadCount(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	carol := userIdentity()
	a.expect("GET", "/api/notifications/unread-count", nil, http.StatusUnauthorized)
	if got := a.expect("GET", "/api/notifications/unread-count", &carol, http.StatusOK); len(got) != 1 || got["unread"] != 0.0 {
		t.Fatalf("unread-count = %v, want {\"unread\": 0}", got)
	}
	a.purchase(carol.UserID, "X")
	if got := a.expect("GET", "/api/notifications/unread-count", &carol, http.StatusOK)["unread"]; got != 1.0 {
		t.Fatalf("unread = %v, want 1", got)
	}
}

// TestInsertIsIdempotent is the rule the consumer relies on, at the store: the same
// (source, user, type) stored twice, or in one statement twice, is one row.
func TestInsertIsIdempotent(t *testing.T) {
	t.Parallel()
	pool := migratedPool(t)
	store := notification.NewStore(pool)
	user, event, source := uuid.New(), uuid.New(), uuid.NewString()
	mk := func() notification.Notification {
		return notification.Notification{ID: uuid.New(), UserID: user, Type: notification.TypeEventReminder,
			Title: "Reminder", Body: "b", EventID: event, SourceID: source}
	}
	ctx := context.Background()
	n, err := store.Insert(ctx, []notification.Notification{mk(), mk()})
	if err != nil || n != 1 {
		t.Fatalf("first insert: %d new, %v; want 1", n, err)
	}
	n, err = store.Insert(ctx, []notification.Notification{mk()})
	if err != nil || n != 0 {
		t.Fatalf("second insert: %d new, %v; want 0", n, err)
	}
	other := mk()
	other.Type = notification.TypeEventCancelled
	if n, err := store.Insert(ctx, []notification.Notification{other}); err != nil || n != 1 {
		t.Fatalf("another type from the same source: %d new, %v; want 1", n, err)
	}
}
