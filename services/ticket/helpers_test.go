package ticket_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/event"
	"github.com/sbor-dev/sbor/services/ticket"
)

// running is a service started in-process on a loopback listener, stoppable mid-test.
type running struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop ends the service and waits for Run to return; later calls do nothing.
func (s *running) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = errors.New("did not stop within 30s")
		}
	})
	return s.err
}

// start runs run on a fresh loopback listener until the test ends and waits for /readyz.
func start(t testing.TB, name string, run func(ctx context.Context, ln net.Listener) error) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &running{url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, ln) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("%s service: %v", name, err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("%s service ended before it was ready: %v", name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s service not ready: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// platform is a real event service and a real ticket service, each on its own fresh
// database, sharing a Kafka cluster under a topic prefix of their own.
type platform struct {
	t         testing.TB
	brokers   []string
	prefix    string
	event     *running
	ticket    *running
	pool      *pgxpool.Pool // the ticket service's database
	eventPool *pgxpool.Pool // the event service's database
	client    *http.Client
}

// testLogger discards logs unless SBOR_TEST_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("SBOR_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "."
}

// newPlatform starts both services on brokers (the shared test cluster when nil).
func newPlatform(t testing.TB, brokers []string) *platform {
	return newPlatformWith(t, brokers, nil)
}

// newPlatformWith is newPlatform with the ticket service's configuration adjusted by tune.
func newPlatformWith(t testing.TB, brokers []string, tune func(*ticket.Config)) *platform {
	t.Helper()
	if brokers == nil {
		brokers = kafkatest.Brokers(t)
	}
	p := &platform{t: t, brokers: brokers, prefix: randomPrefix(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	log := testLogger()

	eventDB := pgtest.NewDatabase(t)
	p.event = start(t, "event", func(ctx context.Context, ln net.Listener) error {
		return event.Run(ctx, log, event.Config{
			DatabaseURL: eventDB, MaxConns: 8, Migrate: true,
			KafkaBrokers: brokers, TopicPrefix: p.prefix, CreateTopics: true, Partitions: 3, ReplicationFactor: 1,
		}, ln)
	})
	ticketDB := pgtest.NewDatabase(t)
	cfg := ticket.Config{
		DatabaseURL: ticketDB, MaxConns: 16, Migrate: true, EventURL: p.event.url,
		KafkaBrokers: brokers, TopicPrefix: p.prefix, CreateTopics: true, Partitions: 3, ReplicationFactor: 1,
	}
	if tune != nil {
		tune(&cfg)
	}
	p.ticket = start(t, "ticket", func(ctx context.Context, ln net.Listener) error {
		return ticket.Run(ctx, log, cfg, ln)
	})
	// Both services create their topics in the background; tests read them right away.
	var topics []string
	for _, topic := range append(append([]string{}, ticket.Topics...), event.Topics...) {
		topics = append(topics, p.prefix+topic)
	}
	waitTopics(t, brokers, topics)
	var err error
	if p.pool, err = pgxpool.New(context.Background(), ticketDB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.pool.Close)
	if p.eventPool, err = pgxpool.New(context.Background(), eventDB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.eventPool.Close)
	return p
}

func organizer() *identity.Identity {
	return &identity.Identity{UserID: uuid.New(), Role: identity.RoleOrganizer}
}

func buyer() *identity.Identity {
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

func (r response) num(key string) int {
	f, _ := r.body[key].(float64)
	return int(f)
}

func (r response) items() []map[string]any {
	raw, _ := r.body["items"].([]any)
	out := make([]map[string]any, len(raw))
	for i, it := range raw {
		out[i], _ = it.(map[string]any)
	}
	return out
}

// req is one HTTP request to a service.
type req struct {
	method, path string
	body         any // JSON-encoded unless a string, sent as is
	as           *identity.Identity
	header       map[string]string
}

// call sends r to base as the gateway would (identity headers for r.as). It is safe for
// concurrent use and returns transport errors instead of failing the test.
func (p *platform) call(base string, r req) (response, error) {
	var rd io.Reader
	switch b := r.body.(type) {
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
	hr, err := http.NewRequest(r.method, base+r.path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.as != nil {
		identity.SetHeaders(hr.Header, *r.as)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := p.client.Do(hr)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header}
	if out.raw, err = io.ReadAll(resp.Body); err != nil {
		return response{}, err
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode >= 400 && ct != "application/problem+json" {
		return out, fmt.Errorf("%s %s: %d without problem+json (%s): %s", r.method, r.path, resp.StatusCode, ct, out.raw)
	}
	if len(out.raw) > 0 && strings.Contains(ct, "json") {
		if err := json.Unmarshal(out.raw, &out.body); err != nil {
			return out, fmt.Errorf("%s %s: %v: %s", r.method, r.path, err, out.raw)
		}
	}
	return out, nil
}

// tickets calls the ticket service and fails the test on a transport error.
func (p *platform) tickets(r req) response {
	p.t.Helper()
	resp, err := p.call(p.ticket.url, r)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp
}

// must calls the ticket service and fails the test unless the status is want.
func (p *platform) must(want int, r req) response {
	p.t.Helper()
	resp := p.tickets(r)
	if resp.status != want {
		p.t.Fatalf("%s %s: got %d, want %d: %s", r.method, r.path, resp.status, want, resp.raw)
	}
	return resp
}

// events calls the event service and fails the test unless the status is want.
func (p *platform) events(want int, r req) response {
	p.t.Helper()
	resp, err := p.call(p.event.url, r)
	if err != nil {
		p.t.Fatal(err)
	}
	if resp.status != want {
		p.t.Fatalf("event service %s %s: got %d, want %d: %s", r.method, r.path, resp.status, want, resp.raw)
	}
	return resp
}

// eventStart is when the test events start: far enough ahead for any sales window.
const eventStart = 30 * 24 * time.Hour

// draftEvent creates a draft event of org through the event service.
func (p *platform) draftEvent(org *identity.Identity, title string) string {
	p.t.Helper()
	start := time.Now().Add(eventStart).UTC().Truncate(time.Second)
	return p.events(http.StatusCreated, req{method: "POST", path: "/api/events", as: org, body: map[string]any{
		"title": title, "description": "A gathering.", "venue": "Main hall",
		"starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339),
	}}).str("id")
}

// publishedEvent creates and publishes an event of org.
func (p *platform) publishedEvent(org *identity.Identity, title string) string {
	p.t.Helper()
	id := p.draftEvent(org, title)
	p.events(http.StatusOK, req{method: "POST", path: "/api/events/" + id + "/publish", as: org})
	return id
}

// cancelEvent cancels an event through the event service.
func (p *platform) cancelEvent(org *identity.Identity, id string) {
	p.t.Helper()
	p.events(http.StatusOK, req{method: "POST", path: "/api/events/" + id + "/cancel", as: org})
}

// typeBody is a valid ticket type on sale from now until a day before the event.
func typeBody(kind string, quantity int) map[string]any {
	now := time.Now().UTC()
	return map[string]any{
		"type": kind, "price_cents": 2500, "currency": "EUR", "quantity": quantity,
		"sales_start": now.Add(-time.Minute).Format(time.RFC3339Nano),
		"sales_end":   now.Add(eventStart - 24*time.Hour).Format(time.RFC3339Nano),
	}
}

// ticketType creates a type on sale now and returns its id.
func (p *platform) ticketType(org *identity.Identity, eventID, kind string, quantity int) string {
	p.t.Helper()
	return p.must(http.StatusCreated, req{method: "POST", path: "/api/events/" + eventID + "/ticket-types", as: org,
		body: typeBody(kind, quantity)}).str("id")
}

// buy purchases one ticket and returns the response, whatever its status.
func (p *platform) buy(as *identity.Identity, eventID, typeID string, header map[string]string) (response, error) {
	return p.call(p.ticket.url, req{method: "POST", path: "/api/events/" + eventID + "/tickets", as: as,
		body: map[string]any{"ticket_type_id": typeID}, header: header})
}

// mustBuy purchases one ticket and returns it.
func (p *platform) mustBuy(as *identity.Identity, eventID, typeID string) response {
	p.t.Helper()
	return p.must(http.StatusCreated, req{method: "POST", path: "/api/events/" + eventID + "/tickets", as: as,
		body: map[string]any{"ticket_type_id": typeID}})
}

// scalar runs a query returning one value on the ticket database.
func scalar[T any](p *platform, sql string, args ...any) T {
	p.t.Helper()
	var v T
	if err := p.pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		p.t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func (p *platform) exec(sql string, args ...any) {
	p.t.Helper()
	if _, err := p.pool.Exec(context.Background(), sql, args...); err != nil {
		p.t.Fatalf("%s: %v", sql, err)
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitCancelled waits until the ticket service has recorded the event's cancellation.
func (p *platform) waitCancelled(eventID string) {
	p.t.Helper()
	eventually(p.t, 30*time.Second, "event.cancelled to reach the ticket service", func() bool {
		return scalar[bool](p, `SELECT EXISTS (SELECT 1 FROM cancelled_events WHERE event_id = $1)`, eventID)
	})
}

// ticketMessage is a ticket.* message read from Kafka.
type ticketMessage struct {
	Key   string
	Event cloudevent.Event
	Data  cloudevent.TicketData
}

func decodeTicketMessages(t testing.TB, key []byte, value []byte) ticketMessage {
	t.Helper()
	ev, err := cloudevent.Decode(value)
	if err != nil {
		t.Fatal(err)
	}
	var d cloudevent.TicketData
	if err := ev.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	return ticketMessage{Key: string(key), Event: ev, Data: d}
}

// consumeTickets reads n messages of a ticket topic of this platform from Kafka.
func (p *platform) consumeTickets(topic string, n int) []ticketMessage {
	p.t.Helper()
	msgs := kafkatest.Consume(p.t, p.brokers, p.prefix+topic, n, 60*time.Second)
	out := make([]ticketMessage, len(msgs))
	for i, m := range msgs {
		out[i] = decodeTicketMessages(p.t, m.Key, m.Value)
	}
	return out
}

// parallel runs n copies of f at once, released together, and waits for them.
func parallel(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			f(i)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
}

// waitTopics waits until every topic exists with a leader for each partition.
func waitTopics(t testing.TB, brokers []string, topics []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(t, 60*time.Second, "topics "+strings.Join(topics, ", "), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, topics...)
		if err != nil {
			return false
		}
		for _, topic := range topics {
			td, ok := md.Topics[topic]
			if !ok || td.Err != nil || len(td.Partitions) == 0 {
				return false
			}
			for _, part := range td.Partitions {
				if part.Err != nil || part.Leader < 0 {
					return false
				}
			}
		}
		return true
	})
}
