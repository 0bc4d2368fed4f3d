package chaos

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sbor-dev/sbor/test/platform"
)

// Sale sizes: enough concurrent buyers and purchases around the fault that it lands in the
// middle of traffic, small enough for two cores.
const (
	buyers       = 12
	warmupAcks   = 30 // purchases acknowledged before the fault
	recoveryAcks = 30 // purchases acknowledged after it healed
)

// TestKafkaStopped stops the (platform's own) Kafka broker for several seconds mid-sale.
// Purchases only write the outbox, so every one of them must still succeed during the
// outage; the relay and the consumer catch up once the broker is back.
func TestKafkaStopped(t *testing.T) {
	p := platform.Start(t, platform.Options{OwnKafka: true})
	s := newSale(t, p, buyers)
	s.start()
	s.waitMoreAcks(warmupAcks, time.Minute)

	s.setPhase("fault")
	faultStart := time.Now()
	if err := p.Kafka.Stop(); err != nil {
		t.Fatalf("stopping Kafka: %v", err)
	}
	stopped := time.Since(faultStart)
	// The sale goes on while the broker is away.
	s.waitMoreAcks(warmupAcks, time.Minute)
	if pause := 6*time.Second - time.Since(faultStart); pause > 0 {
		time.Sleep(pause)
	}
	ackedDuringOutage := s.acknowledged()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := p.Kafka.Restart(ctx); err != nil {
		t.Fatalf("restarting Kafka: %v", err)
	}
	outage := time.Since(faultStart)
	s.setPhase("after")
	s.waitMoreAcks(recoveryAcks, time.Minute)
	s.stopSale()

	during := s.answersIn("fault")
	for status, n := range during {
		if status != http.StatusCreated {
			t.Errorf("during the Kafka outage %d purchases were answered %d; a Kafka outage must never fail a purchase", n, status)
		}
	}
	f := s.verify()
	f["fault"] = "Kafka broker stopped (controlled shutdown) and restarted"
	f["outage_ms"], f["broker_stop_ms"] = ms(outage), ms(stopped)
	f["acknowledged_during_outage"] = ackedDuringOutage
	report(t, "kafka-stopped", f)
}

// TestTicketServiceKilled SIGKILLs the ticket service in the middle of the sale, with
// purchases in flight, and starts it again. Buyers retry with their Idempotency-Key: a
// purchase that committed before the kill is answered by the replay, never bought twice.
func TestTicketServiceKilled(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	s := newSale(t, p, buyers)
	s.start()
	s.waitMoreAcks(warmupAcks, time.Minute)

	s.setPhase("fault")
	faultStart := time.Now()
	p.Kill("ticket")
	time.Sleep(2 * time.Second)
	p.Restart("ticket")
	downtime := time.Since(faultStart)
	s.setPhase("after")
	s.waitMoreAcks(recoveryAcks, time.Minute)
	s.stopSale()

	if s.answersIn("fault")[http.StatusServiceUnavailable] == 0 {
		t.Error("no purchase was answered 503 while the ticket service was down")
	}
	f := s.verify()
	f["fault"] = "ticket service SIGKILLed mid-sale, restarted after 2 s"
	f["downtime_ms"] = ms(downtime)
	report(t, "ticket-killed", f)
}

// TestNotificationKilledMidBatch lets a backlog of ticket.purchased messages pile up, kills
// the notification service with SIGKILL while it works through them (handled but not yet
// committed messages come again), then runs two instances side by side in one consumer
// group. The unique key of a notification keeps every ticket at exactly one.
func TestNotificationKilledMidBatch(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	s := newSale(t, p, buyers)
	s.start()
	s.waitMoreAcks(warmupAcks, time.Minute)

	s.setPhase("fault")
	p.Kill("notification")
	s.waitMoreAcks(150, 2*time.Minute) // the backlog
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.Env["SBOR_NOTIFICATION_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM notifications`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	p.RestartNoWait("notification")
	// Kill it again as soon as it has made progress through the backlog.
	deadline := time.Now().Add(time.Minute)
	for count() == before && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	p.Kill("notification")
	atKill := count()
	backlog := s.acknowledged()
	if atKill == before {
		t.Fatal("the restarted notification service made no progress within a minute")
	}
	t.Logf("killed the notification service mid-batch: %d notifications before, %d at the kill, %d purchases acknowledged", before, atKill, backlog)

	p.StartInstance("notification-2", "notification")
	p.Restart("notification")
	s.setPhase("after")
	s.waitMoreAcks(recoveryAcks, time.Minute)
	s.stopSale()

	f := s.verify()
	f["fault"] = "notification service SIGKILLed while working through a backlog, then two instances in one group"
	f["notifications_before_restart"], f["notifications_at_kill"], f["acknowledged_at_kill"] = before, atKill, backlog
	f["mid_batch"] = atKill > before && atKill < backlog
	report(t, "notification-killed", f)
}

// TestPostgresRestarted stops the platform's own PostgreSQL (durable: no acknowledged commit
// may be lost) mid-sale. While it is down every service answers 503 and is not ready; once
// it is back everything recovers without restarting a single service.
func TestPostgresRestarted(t *testing.T) {
	p := platform.Start(t, platform.Options{OwnPostgres: true})
	s := newSale(t, p, buyers)
	s.start()
	s.waitMoreAcks(warmupAcks, time.Minute)

	services := []string{"user", "event", "ticket", "notification"}
	s.setPhase("fault")
	faultStart := time.Now()
	if err := p.Postgres.Stop(); err != nil {
		t.Fatalf("stopping PostgreSQL: %v", err)
	}
	// Readiness turns false, and each service answers 503 (not 500) through the gateway.
	platform.Eventually(t, 20*time.Second, "every service not ready", func() bool {
		for _, name := range services {
			if p.Ready(name) {
				return false
			}
		}
		return true
	})
	notReadyAfter := time.Since(faultStart)
	anon, buyer := p.Anonymous(), s.buyers[0]
	down := map[string]int{
		"GET /api/events":        anon.Do("GET", "/api/events", nil).Status,
		"POST /api/auth/login":   anon.Do("POST", "/api/auth/login", map[string]string{"email": buyer.Email, "password": "correct-horse-9"}).Status,
		"GET /api/tickets":       buyer.Do("GET", "/api/tickets", nil).Status,
		"GET /api/notifications": buyer.Do("GET", "/api/notifications", nil).Status,
	}
	for what, status := range down {
		if status != http.StatusServiceUnavailable {
			t.Errorf("%s while PostgreSQL is down: %d, want 503", what, status)
		}
	}
	if pause := 5*time.Second - time.Since(faultStart); pause > 0 {
		time.Sleep(pause)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Postgres.Restart(ctx); err != nil {
		t.Fatalf("restarting PostgreSQL: %v", err)
	}
	outage := time.Since(faultStart)
	platform.Eventually(t, 30*time.Second, "every service ready again", func() bool {
		for _, name := range services {
			if !p.Ready(name) {
				return false
			}
		}
		return true
	})
	readyAfter := time.Since(faultStart) - outage
	for _, name := range append(services, "gateway") {
		if !p.Running(name) {
			t.Errorf("%s is no longer running", name)
		}
	}
	s.setPhase("after")
	s.waitMoreAcks(recoveryAcks, time.Minute)
	s.stopSale()

	if s.answersIn("fault")[http.StatusServiceUnavailable] == 0 {
		t.Error("no purchase was answered 503 while PostgreSQL was down")
	}
	f := s.verify()
	f["fault"] = "PostgreSQL (durable) stopped mid-sale and started again; no service restarted"
	f["outage_ms"], f["not_ready_after_ms"], f["ready_again_after_ms"] = ms(outage), ms(notReadyAfter), ms(readyAfter)
	f["answers_while_down"] = down
	report(t, "postgres-restarted", f)
}

// TestEventServiceDown kills the event service while purchases come in. The ticket service
// asks it about the event before every purchase, so each purchase is refused with a clear
// 503 (event_service_unavailable, Retry-After) and leaves nothing behind; some buyers send no
// Idempotency-Key, so a half-made ticket would show up as an orphan.
func TestEventServiceDown(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	s := newSale(t, p, buyers)
	for i := range s.buyers {
		s.noKey[i] = i%2 == 1
	}
	s.start()
	s.waitMoreAcks(warmupAcks, time.Minute)

	s.setPhase("fault")
	faultStart := time.Now()
	p.Kill("event")
	// Purchases in flight at the kill may still complete; from the first 503 on, none may.
	platform.Eventually(t, 10*time.Second, "a purchase refused with 503", func() bool {
		return s.answersIn("fault")[http.StatusServiceUnavailable] > 0
	})
	time.Sleep(500 * time.Millisecond)
	ackedAtFirst503 := s.acknowledged()
	tickets := func() int {
		n, cursor := 0, ""
		for page := 0; page < 1000; page++ {
			r := s.org.Must(200, "GET", "/api/events/"+s.eventID+"/tickets?limit=100&cursor="+cursor, nil)
			n += len(platform.Items(r))
			if cursor, _ = r.JSON["next_cursor"].(string); cursor == "" {
				break
			}
		}
		return n
	}
	ticketsAtFirst503 := tickets()
	retryAfter := ""
	r := s.buyers[0].Do("POST", "/api/events/"+s.eventID+"/tickets", map[string]string{"ticket_type_id": s.typeIDs[0]})
	if r.Status != http.StatusServiceUnavailable || r.JSON["code"] != "event_service_unavailable" {
		t.Errorf("a purchase while the event service is down: %d %s", r.Status, r.Body)
	}
	retryAfter = r.Header.Get("Retry-After")
	if retryAfter == "" {
		t.Error("the 503 has no Retry-After")
	}
	if pause := 5*time.Second - time.Since(faultStart); pause > 0 {
		time.Sleep(pause)
	}
	if n := tickets(); n != ticketsAtFirst503 {
		t.Errorf("%d tickets were made while the event service was down", n-ticketsAtFirst503)
	}
	if n := s.acknowledged(); n != ackedAtFirst503 {
		t.Errorf("%d purchases were acknowledged while the event service was down", n-ackedAtFirst503)
	}
	p.Restart("event")
	downtime := time.Since(faultStart)
	s.setPhase("after")
	s.waitMoreAcks(recoveryAcks, time.Minute)
	s.stopSale()

	f := s.verify()
	f["fault"] = "event service SIGKILLed mid-sale for 5 s; half the buyers send no Idempotency-Key"
	f["downtime_ms"], f["retry_after"] = ms(downtime), retryAfter
	f["buyers_without_key"] = len(s.buyers) / 2
	report(t, "event-down", f)
}
