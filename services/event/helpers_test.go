package event_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/event"
)

// service is an event service started with event.Run on a fresh database, called as the
// gateway would call it, plus a pool on its database to look at what it wrote.
type service struct {
	t    testing.TB
	url  string
	pool *pgxpool.Pool
}

// startService runs event.Run with cfg (DatabaseURL and Migrate are filled in) until the
// test ends.
func startService(t testing.TB, cfg event.Config) *service {
	t.Helper()
	cfg.DatabaseURL = pgtest.NewDatabase(t)
	cfg.Migrate = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- event.Run(ctx, testLogger(), cfg, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("event.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("event.Run did not stop within 30s")
		}
	})
	s := &service{t: t, url: "http://" + ln.Addr().String()}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("event.Run ended before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("event service not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.pool, err = pgxpool.New(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.pool.Close)
	return s
}

func organizer() *identity.Identity {
	return &identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer}
}

func plainUser() *identity.Identity {
	return &identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
}

// response is what a call returned.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// call sends a request; body is JSON-encoded unless it is a string (sent as is). as, when
// set, is the identity the gateway would put in the headers. It is safe for concurrent use.
func (s *service) call(method, path string, body any, as *identity.Identity) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if as != nil {
		identity.SetHeaders(req.Header, *as)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header}
	if out.raw, err = io.ReadAll(resp.Body); err != nil {
		return response{}, err
	}
	if len(out.raw) > 0 {
		if err := json.Unmarshal(out.raw, &out.body); err != nil {
			return response{}, err
		}
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		return response{}, &unexpected{what: method + " " + path + ": error without problem+json: " + resp.Header.Get("Content-Type")}
	}
	return out, nil
}

type unexpected struct{ what string }

func (u *unexpected) Error() string { return u.what }

// do is call that fails the test on a transport error.
func (s *service) do(method, path string, body any, as *identity.Identity) response {
	s.t.Helper()
	r, err := s.call(method, path, body, as)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// must is do that also fails the test unless the status is want.
func (s *service) must(want int, method, path string, body any, as *identity.Identity) response {
	s.t.Helper()
	r := s.do(method, path, body, as)
	if r.status != want {
		s.t.Fatalf("%s %s: got %d, want %d: %s", method, path, r.status, want, r.raw)
	}
	return r
}

// eventBody is a valid create/update body for an event starting in `in`.
func eventBody(title string, in time.Duration) map[string]any {
	start := time.Now().Add(in).UTC().Truncate(time.Second)
	return map[string]any{
		"title": title, "description": "A gathering.", "venue": "Main hall",
		"starts_at": start.Format(time.RFC3339), "ends_at": start.Add(2 * time.Hour).Format(time.RFC3339),
	}
}

// create makes a draft of as starting in `in` and returns its id.
func (s *service) create(as *identity.Identity, title string, in time.Duration) string {
	s.t.Helper()
	return s.must(http.StatusCreated, "POST", "/api/events", eventBody(title, in), as).str("id")
}

// published makes a published event of as and returns its id.
func (s *service) published(as *identity.Identity, title string, in time.Duration) string {
	s.t.Helper()
	id := s.create(as, title, in)
	s.must(http.StatusOK, "POST", "/api/events/"+id+"/publish", nil, as)
	return id
}

func (s *service) exec(sql string, args ...any) {
	s.t.Helper()
	if _, err := s.pool.Exec(context.Background(), sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// outboxRow is one message the service wrote to its outbox.
type outboxRow struct {
	ID    int64
	Topic string
	Key   string
	Event cloudevent.Event
	Data  cloudevent.EventData
}

// outbox returns the outbox rows with the given key (every row when key is empty), in the
// order they were written.
func (s *service) outbox(key string) []outboxRow {
	s.t.Helper()
	rows, err := s.pool.Query(context.Background(),
		`SELECT id, topic, key, payload FROM outbox WHERE $1 = '' OR key = $1 ORDER BY id`, key)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var payload []byte
		if err := rows.Scan(&r.ID, &r.Topic, &r.Key, &payload); err != nil {
			s.t.Fatal(err)
		}
		var err error
		if r.Event, err = cloudevent.Decode(payload); err != nil {
			s.t.Fatalf("outbox row %d: %v", r.ID, err)
		}
		if err := r.Event.DecodeData(&r.Data); err != nil {
			s.t.Fatalf("outbox row %d: %v", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}

func topics(rows []outboxRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Topic
	}
	return out
}

// testLogger discards logs unless EVENT_TEST_LOG=1, which shows warnings and errors.
func testLogger() *slog.Logger {
	if os.Getenv("EVENT_TEST_LOG") != "1" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
