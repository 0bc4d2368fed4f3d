package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/test/platform"
)

// Bounds of every sale: no loop runs longer than these.
const (
	// purchaseDeadline is how long one buyer keeps retrying one purchase with the same
	// Idempotency-Key before giving up (a real client would show an error).
	purchaseDeadline = 90 * time.Second
	// settleTimeout bounds the wait for messages and notifications after a fault healed.
	settleTimeout = 90 * time.Second
	quantity      = 100000
)

var httpClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// sale is a ticket sale driven by concurrent buyers through the gateway, with its books.
type sale struct {
	t       *testing.T
	p       *platform.Platform
	org     *platform.Client
	eventID string
	typeIDs []string
	buyers  []*platform.Client
	// noKey marks buyers that send no Idempotency-Key: a retry of theirs is a new purchase,
	// so a failed answer that still made a ticket shows up as an orphan.
	noKey map[int]bool

	stop chan struct{}
	wg   sync.WaitGroup

	mu         sync.Mutex
	phase      string
	attempts   int            // HTTP requests sent
	purchases  int            // purchases started (one per Idempotency-Key)
	tickets    map[string]int // acknowledged ticket id → buyer
	ackedAt    []time.Time
	answers    map[string]map[int]int    // phase → status → count
	codes      map[string]map[string]int // phase → problem code → count
	transport  int                       // requests that got no HTTP answer at all
	replayed   int                       // 201s that replayed an earlier commit
	gaveUp     int
	unexpected []string
}

// newSale signs up an organizer and the buyers and opens a published event with two ticket
// types, each with plenty of tickets.
func newSale(t *testing.T, p *platform.Platform, buyers int) *sale {
	t.Helper()
	s := &sale{
		t: t, p: p, noKey: map[int]bool{}, tickets: map[string]int{}, phase: "before",
		answers: map[string]map[int]int{}, codes: map[string]map[string]int{},
	}
	s.org = p.Organizer("Chaos")
	start := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	s.eventID = s.org.Must(201, "POST", "/api/events", map[string]any{
		"title": "Chaos Night", "description": "Everything breaks.", "venue": "Hall C",
		"starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339),
	}).JSON["id"].(string)
	s.org.Must(200, "POST", "/api/events/"+s.eventID+"/publish", nil)
	for _, kind := range []string{"standard", "vip"} {
		r := s.org.Must(201, "POST", "/api/events/"+s.eventID+"/ticket-types", map[string]any{
			"type": kind, "price_cents": 1500, "currency": "EUR", "quantity": quantity,
			"sales_start": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
			"sales_end":   start.Add(-time.Hour).Format(time.RFC3339),
		})
		s.typeIDs = append(s.typeIDs, r.JSON["id"].(string))
	}
	for i := range buyers {
		s.buyers = append(s.buyers, p.SignUp(fmt.Sprintf("buyer%d", i)))
	}
	return s
}

// setPhase names what happens now (before, fault, after); answers are counted per phase.
func (s *sale) setPhase(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase = name
}

// start sends every buyer shopping: one purchase after another, with a short pause, until
// stopSale.
func (s *sale) start() {
	s.stop = make(chan struct{})
	for i := range s.buyers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-s.stop:
					return
				default:
				}
				s.purchase(i, s.typeIDs[(i+n)%len(s.typeIDs)])
				time.Sleep(time.Duration(10+rand.IntN(30)) * time.Millisecond)
			}
		}()
	}
}

// stopSale lets every purchase in flight finish (its retries included) and starts no more.
func (s *sale) stopSale() {
	close(s.stop)
	s.wg.Wait()
}

// acknowledged returns how many purchases have been answered 201.
func (s *sale) acknowledged() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tickets)
}

// waitAcks waits until n more purchases than now are acknowledged.
func (s *sale) waitMoreAcks(n int, timeout time.Duration) {
	s.t.Helper()
	target := s.acknowledged() + n
	platform.Eventually(s.t, timeout, fmt.Sprintf("%d acknowledged purchases", target), func() bool {
		return s.acknowledged() >= target
	})
}

// purchase buys one ticket the way a careful client does: one Idempotency-Key, retried on
// 503 and on no answer at all until a definite answer or purchaseDeadline.
func (s *sale) purchase(i int, typeID string) {
	buyer := s.buyers[i]
	key := ""
	if !s.noKey[i] {
		key = "chaos-" + uuid.NewString()
	}
	s.mu.Lock()
	s.purchases++
	s.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"ticket_type_id": typeID})
	deadline := time.Now().Add(purchaseDeadline)
	for {
		s.mu.Lock()
		s.attempts++
		s.mu.Unlock()
		status, header, raw, err := send(buyer.Token, "POST", s.p.Gateway+"/api/events/"+s.eventID+"/tickets", body, key)
		s.mu.Lock()
		phase := s.phase // the phase in which the answer came
		if err != nil {
			s.transport++
		} else {
			if s.answers[phase] == nil {
				s.answers[phase], s.codes[phase] = map[int]int{}, map[string]int{}
			}
			s.answers[phase][status]++
			if status >= 400 {
				s.codes[phase][problemCode(raw)]++
			}
		}
		s.mu.Unlock()
		switch {
		case err != nil, status == http.StatusServiceUnavailable, status == http.StatusBadGateway, status == http.StatusGatewayTimeout:
			if err == nil && header.Get("Content-Type") != "application/problem+json" {
				s.fail("%d without problem+json: %q", status, raw)
			}
		case status == http.StatusCreated:
			var tk struct {
				ID     string `json:"id"`
				UserID string `json:"user_id"`
				Status string `json:"status"`
			}
			if json.Unmarshal(raw, &tk) != nil || tk.ID == "" || tk.UserID != buyer.UserID || tk.Status != "active" {
				s.fail("unreadable purchase answer: %s", raw)
				return
			}
			s.mu.Lock()
			if owner, dup := s.tickets[tk.ID]; dup {
				s.unexpected = append(s.unexpected, fmt.Sprintf("ticket %s acknowledged twice (buyers %d and %d)", tk.ID, owner, i))
			}
			s.tickets[tk.ID] = i
			s.ackedAt = append(s.ackedAt, time.Now())
			if header.Get("Idempotency-Replayed") == "true" {
				s.replayed++
			}
			s.mu.Unlock()
			return
		default:
			s.fail("purchase answered %d: %s", status, raw)
			return
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			s.gaveUp++
			s.mu.Unlock()
			return
		}
		time.Sleep(time.Duration(100+rand.IntN(150)) * time.Millisecond)
	}
}

func (s *sale) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unexpected = append(s.unexpected, fmt.Sprintf(format, args...))
}

// send makes one request without failing the test: faults make errors expected.
func send(tok, method, url string, body []byte, idempotencyKey string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw, err
}

func problemCode(raw []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(raw, &p) != nil || p.Code == "" {
		return "(none)"
	}
	return p.Code
}

// answersIn returns the answers counted in a phase, by status.
func (s *sale) answersIn(phase string) map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.answers[phase] {
		out[k] = v
	}
	return out
}

// figures are what a chaos test reports.
type figures map[string]any

// verify checks the books once the sale has stopped and the fault has healed, and returns
// the figures. Every check waits (bounded) for what travels asynchronously: the outbox, the
// consumer and the notifications.
func (s *sale) verify() figures {
	t := s.t
	t.Helper()
	s.mu.Lock()
	acked := make(map[string]int, len(s.tickets))
	for k, v := range s.tickets {
		acked[k] = v
	}
	f := figures{
		"buyers": len(s.buyers), "purchases": s.purchases, "attempts": s.attempts,
		"acknowledged": len(acked), "replayed": s.replayed, "no_answer": s.transport, "gave_up": s.gaveUp,
		"answers": s.answers, "problem_codes": s.codes,
	}
	for _, u := range s.unexpected {
		t.Errorf("during the sale: %s", u)
	}
	if s.gaveUp > 0 {
		t.Errorf("%d purchases gave up after %s of retries", s.gaveUp, purchaseDeadline)
	}
	s.mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no purchase was acknowledged")
	}

	// 1. Every acknowledged purchase exists exactly once, and nothing else does.
	listed := map[string]int{}
	cursor := ""
	for page := 0; page < 10000; page++ {
		r := s.org.Must(200, "GET", "/api/events/"+s.eventID+"/tickets?limit=100&cursor="+cursor, nil)
		for _, it := range platform.Items(r) {
			listed[it["id"].(string)]++
		}
		if cursor, _ = r.JSON["next_cursor"].(string); cursor == "" {
			break
		}
	}
	ticketDuplicates, missing, orphans := 0, 0, 0
	for id, n := range listed {
		if n > 1 {
			ticketDuplicates += n - 1
			t.Errorf("ticket %s is listed %d times", id, n)
		}
		if _, ok := acked[id]; !ok {
			orphans++
			t.Errorf("ticket %s exists but no buyer was answered 201 for it", id)
		}
	}
	for id := range acked {
		if listed[id] == 0 {
			missing++
			t.Errorf("acknowledged ticket %s does not exist", id)
		}
	}
	// Each buyer sees exactly their own tickets.
	for i, b := range s.buyers {
		mine := map[string]bool{}
		cursor := ""
		for page := 0; page < 1000; page++ {
			r := b.Must(200, "GET", "/api/tickets?limit=100&cursor="+cursor, nil)
			for _, it := range platform.Items(r) {
				mine[it["id"].(string)] = true
			}
			if cursor, _ = r.JSON["next_cursor"].(string); cursor == "" {
				break
			}
		}
		for id, owner := range acked {
			if owner == i && !mine[id] {
				t.Errorf("buyer %d does not see their ticket %s", i, id)
			}
		}
		for id := range mine {
			if acked[id] != i {
				t.Errorf("buyer %d sees ticket %s that was not acknowledged to them", i, id)
			}
		}
	}

	// 2. The counters agree with the tickets.
	sold := 0
	for _, tt := range platform.Items(s.org.Must(200, "GET", "/api/events/"+s.eventID+"/ticket-types", nil)) {
		n := int(tt["sold"].(float64))
		if int(tt["available"].(float64)) != quantity-n {
			t.Errorf("ticket type %v: available is not quantity - sold", tt)
		}
		sold += n
	}
	if sold != len(listed) {
		t.Errorf("sold = %d, but %d tickets exist", sold, len(listed))
	}
	f["tickets"], f["sold"], f["orphans"], f["missing"] = len(listed), sold, orphans, missing

	// 3. Exactly one ticket.purchased CloudEvent per ticket.
	settleStart := time.Now()
	msgs := s.purchasedMessages(len(listed))
	f["kafka_settle_ms"] = time.Since(settleStart).Milliseconds()
	eventIDs := map[string]map[string]int{} // ticket → CloudEvent id → deliveries
	for _, m := range msgs {
		ev, err := cloudevent.Decode(m.Value)
		if err != nil {
			t.Errorf("unreadable message at %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
			continue
		}
		var d cloudevent.TicketData
		if err := ev.DecodeData(&d); err != nil {
			t.Errorf("unreadable ticket data in %s: %v", ev.ID, err)
			continue
		}
		if string(m.Key) != s.eventID || d.EventID.String() != s.eventID {
			t.Errorf("message %s: key %q, event %s; want the event %s", ev.ID, m.Key, d.EventID, s.eventID)
		}
		id := d.TicketID.String()
		if eventIDs[id] == nil {
			eventIDs[id] = map[string]int{}
		}
		eventIDs[id][ev.ID]++
	}
	messageDuplicates, redeliveries := 0, 0
	for id, ces := range eventIDs {
		if len(ces) > 1 {
			messageDuplicates += len(ces) - 1
			t.Errorf("ticket %s has %d different ticket.purchased events", id, len(ces))
		}
		for _, n := range ces {
			redeliveries += n - 1
		}
		if listed[id] == 0 {
			t.Errorf("ticket.purchased for ticket %s, which does not exist", id)
		}
	}
	for id := range listed {
		if len(eventIDs[id]) == 0 {
			t.Errorf("ticket %s has no ticket.purchased message", id)
		}
	}
	// A redelivery is the same CloudEvent (same id) published again: the relay was stopped
	// after Kafka acknowledged a batch and before it recorded that in the outbox. That is
	// the outbox's at-least-once contract; consumers deduplicate by CloudEvent id, which
	// check 4 proves. It is a figure, not a failure.
	f["kafka_messages"], f["kafka_duplicate_events"], f["kafka_redeliveries"] = len(msgs), messageDuplicates, redeliveries

	// 4. Exactly one notification per ticket, for its buyer.
	settleStart = time.Now()
	rows := s.notificationRows(len(listed))
	f["notify_settle_ms"] = time.Since(settleStart).Milliseconds()
	delivered, notificationDuplicates := 0, 0
	for id, r := range rows {
		delivered += r.count
		if r.count > 1 {
			notificationDuplicates += r.count - 1
			t.Errorf("ticket %s has %d notifications", id, r.count)
		}
		if owner, ok := acked[id]; !ok || s.buyers[owner].UserID != r.user {
			t.Errorf("notification of ticket %s for user %s, not its buyer", id, r.user)
		}
	}
	for id := range listed {
		if rows[id].count == 0 {
			t.Errorf("ticket %s has no notification", id)
		}
	}
	// Every buyer sees one notification per ticket through the API too.
	for i, b := range s.buyers {
		want := 0
		for _, owner := range acked {
			if owner == i {
				want++
			}
		}
		got := 0
		cursor := ""
		for page := 0; page < 1000; page++ {
			r := b.Must(200, "GET", "/api/notifications?limit=100&cursor="+cursor, nil)
			for _, n := range platform.Items(r) {
				if n["type"] == "ticket.purchased" && n["event_id"] == s.eventID {
					got++
				}
			}
			if cursor, _ = r.JSON["next_cursor"].(string); cursor == "" {
				break
			}
		}
		if got != want {
			t.Errorf("buyer %d has %d purchase notifications for %d tickets", i, got, want)
		}
	}
	f["delivered"] = delivered
	f["duplicates"] = map[string]int{
		"tickets": ticketDuplicates, "kafka_events": messageDuplicates,
		"kafka_redeliveries": redeliveries, "notifications": notificationDuplicates,
	}
	return f
}

// purchasedMessages waits until the ticket.purchased topic holds at least want messages,
// and a second longer for late duplicates, then reads all of them.
func (s *sale) purchasedMessages(want int) []kafka.Message {
	t := s.t
	t.Helper()
	brokers := strings.Split(s.p.Env["KAFKA_BROKERS"], ",")
	topic := s.p.Env["SBOR_KAFKA_TOPIC_PREFIX"] + cloudevent.TypeTicketPurchased
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	count := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return -1
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return -1
		}
		total := 0
		ends.Each(func(o kadm.ListedOffset) {
			if st, ok := starts.Lookup(topic, o.Partition); ok {
				total += int(o.Offset - st.Offset)
			}
		})
		return total
	}
	platform.Eventually(t, settleTimeout, fmt.Sprintf("%d ticket.purchased messages", want), func() bool {
		return count() >= want
	})
	time.Sleep(time.Second)
	total := count()
	return kafkatest.Consume(t, brokers, topic, total, 60*time.Second)
}

type notificationRow struct {
	user  string
	count int
}

// notificationRows waits until the notification database holds a purchase notification
// for at least want tickets of the sale, and two seconds longer for late duplicates, then
// returns them by ticket.
func (s *sale) notificationRows(want int) map[string]notificationRow {
	t := s.t
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.p.Env["SBOR_NOTIFICATION_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	read := func() map[string]notificationRow {
		rows, err := conn.Query(ctx, `SELECT ticket_id::text, user_id::text, count(*) FROM notifications
			WHERE type = 'ticket.purchased' AND event_id = $1 GROUP BY 1, 2`, s.eventID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]notificationRow{}
		for rows.Next() {
			var id, user string
			var n int
			if err := rows.Scan(&id, &user, &n); err != nil {
				t.Fatal(err)
			}
			r := out[id]
			r.user, r.count = user, r.count+n
			out[id] = r
		}
		return out
	}
	got := 0
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		if got = len(read()); got >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got < want {
		t.Errorf("after %s only %d of %d tickets have a notification", settleTimeout, got, want)
	}
	time.Sleep(2 * time.Second)
	return read()
}

// report logs the figures and writes them to .bench/chaos-<name>.json.
func report(t *testing.T, name string, f figures) {
	t.Helper()
	f["test"] = t.Name()
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v, _ := json.Marshal(f[k])
		b.WriteString("\n  " + k + ": " + string(v))
	}
	t.Logf("figures of %s:%s", t.Name(), b.String())
	raw, _ := json.MarshalIndent(f, "", "  ")
	dir := filepath.Join(platform.RepoRoot(), ".bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("figures: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos-"+name+".json"), append(raw, '\n'), 0o644); err != nil {
		t.Errorf("figures: %v", err)
	}
}

// ms is a duration in milliseconds, for the figures.
func ms(d time.Duration) int64 { return d.Milliseconds() }
