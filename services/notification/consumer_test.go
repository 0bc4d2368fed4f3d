package notification_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/notification"
)

// bus is a test's own set of the service's topics on the real broker, under a unique prefix.
type bus struct {
	t       *testing.T
	brokers []string
	prefix  string
	writer  *kafka.Writer
}

func newBus(t *testing.T, partitions int) *bus {
	t.Helper()
	b := newBusWithoutTopics(t)
	b.createTopics(partitions)
	return b
}

func newBusWithoutTopics(t *testing.T) *bus {
	t.Helper()
	var random [4]byte
	_, _ = rand.Read(random[:])
	b := &bus{t: t, brokers: kafkatest.Brokers(t), prefix: "t" + hex.EncodeToString(random[:]) + "."}
	b.writer = kafkabus.NewWriter(b.brokers)
	t.Cleanup(func() { b.writer.Close() })
	return b
}

func (b *bus) createTopics(partitions int) {
	t := b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topics := notification.Topics(b.prefix)
	if err := kafkabus.EnsureTopics(ctx, b.brokers, topics, partitions, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			return // their messages may help
		}
		client := &kafka.Client{Addr: kafka.TCP(b.brokers...), Timeout: 10 * time.Second}
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: topics})
	})
}

// publish writes raw values to the topic of type typ, all with one key (one partition).
func (b *bus) publish(typ, key string, values ...[]byte) {
	b.t.Helper()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Topic: b.prefix + typ, Key: []byte(key), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.writer.WriteMessages(ctx, msgs...); err != nil {
		b.t.Fatal(err)
	}
}

func mustEvent(t *testing.T, typ, subject string, data any) cloudevent.Event {
	t.Helper()
	ev, err := cloudevent.New("/test", typ, subject, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func encode(t *testing.T, ev cloudevent.Event) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func purchaseEvent(t *testing.T, user uuid.UUID) (cloudevent.Event, cloudevent.TicketData) {
	d := cloudevent.TicketData{TicketID: uuid.New(), EventID: uuid.New(), TicketTypeID: uuid.New(), UserID: user,
		EventTitle: "Go Meetup", TicketType: "standard", PurchasedAt: time.Now().UTC()}
	return mustEvent(t, cloudevent.TypeTicketPurchased, d.TicketID.String(), d), d
}

// service is one notification.Run: one replica of the service.
type service struct {
	url  string
	stop func()
}

func startService(t *testing.T, cfg notification.Config) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- notification.Run(ctx, testLogger(t), cfg, ln) }()
	stopped := false
	s := &service{url: "http://" + ln.Addr().String()}
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("notification.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("notification.Run did not stop within 30s")
		}
	}
	t.Cleanup(s.stop)
	waitHTTP(t, s.url+"/readyz")
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("NOTIFICATION_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (%s)", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitCaughtUp waits until group has committed every message of the bus's topics: every
// message was handled and its notifications stored.
func (b *bus) waitCaughtUp(group string) {
	b.t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(b.brokers...), Timeout: 10 * time.Second}
	topics := notification.Topics(b.prefix)
	eventually(b.t, 60*time.Second, "group "+group+" commits every message", func() (bool, string) {
		lags, err := kafkabus.GroupLag(context.Background(), client, group, topics)
		if err != nil {
			return false, err.Error()
		}
		for topic, ps := range lags {
			for p, lag := range ps {
				if lag > 0 {
					return false, fmt.Sprintf("%s/%d committed %d short of its end", topic, p, lag)
				}
			}
		}
		return true, ""
	})
}

func (b *bus) config(dbURL, group string) notification.Config {
	return notification.Config{
		DatabaseURL: dbURL, MaxConns: 4, Migrate: true, TicketURL: "http://127.0.0.1:1",
		KafkaBrokers: b.brokers, TopicPrefix: b.prefix, ConsumerGroup: group,
	}
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestRedeliveredPurchaseNotifiesOnce: the same message delivered twice, then the whole
// topic consumed again by another group on the same database, leaves one notification.
func TestRedeliveredPurchaseNotifiesOnce(t *testing.T) {
	t.Parallel()
	b := newBus(t, 1)
	dbURL := pgtest.NewDatabase(t)
	svc := startService(t, b.config(dbURL, "g1-"+b.prefix))
	pool := openPool(t, dbURL)

	buyer := identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
	ev, d := purchaseEvent(t, buyer.UserID)
	b.publish(cloudevent.TypeTicketPurchased, d.TicketID.String(), encode(t, ev), encode(t, ev))
	b.waitCaughtUp("g1-" + b.prefix)

	a := &api{t: t, url: svc.url}
	list := items(a.expect("GET", "/api/notifications", &buyer, http.StatusOK))
	if len(list) != 1 || list[0]["ticket_id"] != d.TicketID.String() || list[0]["event_id"] != d.EventID.String() ||
		list[0]["body"] != "Your standard ticket for “Go Meetup” is confirmed." {
		t.Fatalf("buyer's notifications = %v, want the one purchase", list)
	}

	// A second group reads the topic from the start: every message is delivered again.
	startService(t, b.config(dbURL, "g2-"+b.prefix))
	b.waitCaughtUp("g2-" + b.prefix)
	if n := count(t, pool, `SELECT count(*) FROM notifications`); n != 1 {
		t.Fatalf("%d notifications after redelivery, want 1", n)
	}
}

// TestConcurrentConsumersNotifyOnce runs two groups of two replicas each on one database:
// every message is handled by both groups (and, across the rebalance when a replica stops,
// some twice within a group), and still each notification is stored exactly once.
func TestConcurrentConsumersNotifyOnce(t *testing.T) {
	t.Parallel()
	b := newBus(t, 3)
	dbURL := pgtest.NewDatabase(t)
	groupA, groupB := "a-"+b.prefix, "b-"+b.prefix
	a1 := startService(t, b.config(dbURL, groupA))
	startService(t, b.config(dbURL, groupA))
	startService(t, b.config(dbURL, groupB))
	startService(t, b.config(dbURL, groupB))
	pool := openPool(t, dbURL)

	const total = 60
	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			ev, d := purchaseEvent(t, users[i%len(users)])
			value := encode(t, ev)
			values := [][]byte{value}
			if i%5 == 0 { // some redelivered by the producer too
				values = append(values, value)
			}
			b.publish(cloudevent.TypeTicketPurchased, d.TicketID.String(), values...)
		}
	}
	publish(0, total/2)
	eventually(t, 60*time.Second, "half the notifications", func() (bool, string) {
		n := count(t, pool, `SELECT count(*) FROM notifications`)
		return n >= total/2, fmt.Sprint(n, " stored")
	})
	a1.stop() // one replica leaves; its partitions move to the other
	publish(total/2, total)
	b.waitCaughtUp(groupA)
	b.waitCaughtUp(groupB)

	if n := count(t, pool, `SELECT count(*) FROM notifications`); n != total {
		t.Fatalf("%d notifications, want %d", n, total)
	}
	if n := count(t, pool, `SELECT count(*) FROM (SELECT 1 FROM notifications GROUP BY source_id, user_id, type HAVING count(*) > 1) d`); n != 0 {
		t.Fatalf("%d duplicated notifications", n)
	}
	for _, u := range users {
		if n := count(t, pool, `SELECT count(*) FROM notifications WHERE user_id = $1`, u); n != total/len(users) {
			t.Fatalf("user has %d notifications, want %d", n, total/len(users))
		}
	}
}

// TestPoisonMessagesAreParked puts every kind of unusable message in front of a good one on
// the same partition: each is parked in dead_letters with its position, and the good one is
// still handled.
func TestPoisonMessagesAreParked(t *testing.T) {
	t.Parallel()
	b := newBus(t, 1)
	dbURL := pgtest.NewDatabase(t)
	svc := startService(t, b.config(dbURL, "g-"+b.prefix))
	pool := openPool(t, dbURL)

	buyer := identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
	good, d := purchaseEvent(t, buyer.UserID)
	wrongType := mustEvent(t, "ticket.refunded", "x", d)
	reminderOnPurchaseTopic := mustEvent(t, cloudevent.TypeEventReminder, "x", cloudevent.EventData{EventID: uuid.New()})
	badData := good
	badData.ID = uuid.NewString()
	badData.Data = json.RawMessage(`{"ticket_id": 42}`)
	noBuyer := mustEvent(t, cloudevent.TypeTicketPurchased, "x", cloudevent.TicketData{TicketID: uuid.New(), EventID: uuid.New()})
	poison := [][]byte{
		[]byte("{not json"),
		[]byte(`{"hello": "world"}`),
		[]byte("\x00\xff binary"),
		encode(t, wrongType),
		encode(t, reminderOnPurchaseTopic),
		encode(t, badData),
		encode(t, noBuyer),
	}
	b.publish(cloudevent.TypeTicketPurchased, "same-key", append(poison, encode(t, good))...)
	// An unknown type on a topic of its own name is parked too.
	b.publish(cloudevent.TypeEventCancelled, "k", []byte(`{"specversion": "1.0"}`))
	b.waitCaughtUp("g-" + b.prefix)

	a := &api{t: t, url: svc.url}
	if list := items(a.expect("GET", "/api/notifications", &buyer, http.StatusOK)); len(list) != 1 {
		t.Fatalf("buyer has %d notifications, want 1", len(list))
	}
	rows, err := pool.Query(context.Background(),
		`SELECT topic, "partition", "offset", key, payload, error FROM dead_letters ORDER BY topic, "offset"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var offsets []int64
	for rows.Next() {
		var topic, errText string
		var partition int
		var offset int64
		var key, payload []byte
		if err := rows.Scan(&topic, &partition, &offset, &key, &payload, &errText); err != nil {
			t.Fatal(err)
		}
		if errText == "" || len(payload) == 0 || partition != 0 {
			t.Errorf("dead letter %s/%d@%d: error %q, %d payload bytes", topic, partition, offset, errText, len(payload))
		}
		if topic == b.prefix+cloudevent.TypeTicketPurchased {
			if string(key) != "same-key" || string(payload) != string(poison[offset]) {
				t.Errorf("dead letter @%d holds key %q payload %q, want %q", offset, key, payload, poison[offset])
			}
			offsets = append(offsets, offset)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(offsets) != len(poison) {
		t.Fatalf("parked purchase-topic offsets %v, want 0..%d", offsets, len(poison)-1)
	}
	if n := count(t, pool, `SELECT count(*) FROM dead_letters WHERE topic = $1`, b.prefix+cloudevent.TypeEventCancelled); n != 1 {
		t.Fatalf("%d dead letters on the cancellation topic, want 1", n)
	}
}

// TestConsumerWaitsForTopics: a replica that starts before the producers created the topics
// consumes them once they exist.
func TestConsumerWaitsForTopics(t *testing.T) {
	t.Parallel()
	b := newBusWithoutTopics(t)
	dbURL := pgtest.NewDatabase(t)
	svc := startService(t, b.config(dbURL, "g-"+b.prefix))
	time.Sleep(time.Second)
	b.createTopics(1)
	buyer := userIdentity()
	ev, d := purchaseEvent(t, buyer.UserID)
	b.publish(cloudevent.TypeTicketPurchased, d.TicketID.String(), encode(t, ev))
	a := &api{t: t, url: svc.url}
	eventually(t, 30*time.Second, "the purchase notification", func() (bool, string) {
		n := len(items(a.expect("GET", "/api/notifications", &buyer, http.StatusOK)))
		return n == 1, fmt.Sprint(n, " notifications")
	})
}

// TestAPIServesWithoutKafka: with no broker reachable the API serves and the consumer waits.
func TestAPIServesWithoutKafka(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadBroker := ln.Addr().String()
	ln.Close()
	svc := startService(t, notification.Config{
		DatabaseURL: pgtest.NewDatabase(t), Migrate: true, TicketURL: "http://127.0.0.1:1",
		KafkaBrokers: []string{deadBroker}, TopicPrefix: "none.",
	})
	a := &api{t: t, url: svc.url}
	u := userIdentity()
	if got := a.expect("GET", "/api/notifications/unread-count", &u, http.StatusOK)["unread"]; got != 0.0 {
		t.Fatalf("unread = %v", got)
	}
}
