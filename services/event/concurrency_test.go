package event_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/services/event"
)

// concurrently sends n requests at once (they wait for a common start) and returns their
// statuses and bodies.
func (s *service) concurrently(n int, req func(i int) (method, path string, as *identity.Identity)) []response {
	s.t.Helper()
	out := make([]response, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			method, path, as := req(i)
			ready.Done()
			<-start
			out[i], errs[i] = s.call(method, path, nil, as)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			s.t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

func count(rs []response, status int) int {
	n := 0
	for _, r := range rs {
		if r.status == status {
			n++
		}
	}
	return n
}

// TestConcurrentPublish: of 20 simultaneous publishes of one draft exactly one succeeds,
// the others are 409, and exactly one event.published is written.
func TestConcurrentPublish(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{MaxConns: 25})
	owner := organizer()
	id := s.create(owner, "Popular", 48*time.Hour)
	rs := s.concurrently(20, func(int) (string, string, *identity.Identity) {
		return "POST", "/api/events/" + id + "/publish", owner
	})
	if ok, conflict := count(rs, 200), count(rs, 409); ok != 1 || conflict != 19 {
		t.Fatalf("%d × 200 and %d × 409, want 1 and 19", ok, conflict)
	}
	for _, r := range rs {
		if r.status == 409 && r.str("code") != "not_draft" {
			t.Fatalf("loser: %s", r.raw)
		}
	}
	rows := s.outbox(id)
	if len(rows) != 1 || rows[0].Topic != "event.published" || rows[0].Data.Version != 2 {
		t.Fatalf("outbox: %v", topics(rows))
	}
	if v := s.must(200, "GET", "/internal/events/"+id, nil, nil).body["version"]; v != float64(2) {
		t.Fatalf("version %v, want 2", v)
	}
}

// TestConcurrentCancel: of 20 simultaneous cancels exactly one succeeds.
func TestConcurrentCancel(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{MaxConns: 25})
	owner := organizer()
	id := s.published(owner, "Doomed", 48*time.Hour)
	rs := s.concurrently(20, func(int) (string, string, *identity.Identity) {
		return "POST", "/api/events/" + id + "/cancel", owner
	})
	if ok, conflict := count(rs, 200), count(rs, 409); ok != 1 || conflict != 19 {
		t.Fatalf("%d × 200 and %d × 409, want 1 and 19", ok, conflict)
	}
	if got := topics(s.outbox(id)); len(got) != 2 || got[1] != "event.cancelled" {
		t.Fatalf("outbox: %v", got)
	}
}

// TestPublishRacingCancel races publishes against cancels of one draft, many times.
//
// A draft may legitimately be published and then cancelled, so "publish then cancel" is one
// valid outcome and "cancel, publish refused" the other; what must never happen is a
// publish taking effect after the cancel (a cancelled event coming back), two publishes or
// two cancels winning, or an announcement without its change. Every round checks that the
// outcome is one of the two serial orders and that the outbox says exactly what happened.
func TestPublishRacingCancel(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{MaxConns: 25})
	owner := organizer()
	const rounds, each = 15, 5
	publishedFirst := 0
	for round := range rounds {
		id := s.create(owner, "Contested", 48*time.Hour)
		rs := s.concurrently(2*each, func(i int) (string, string, *identity.Identity) {
			if i%2 == 0 {
				return "POST", "/api/events/" + id + "/publish", owner
			}
			return "POST", "/api/events/" + id + "/cancel", owner
		})
		var publishes, cancels int
		for i, r := range rs {
			switch {
			case r.status == 200 && i%2 == 0:
				publishes++
			case r.status == 200:
				cancels++
			case r.status != 409:
				t.Fatalf("round %d: unexpected %d %s", round, r.status, r.raw)
			}
		}
		if cancels != 1 || publishes > 1 {
			t.Fatalf("round %d: %d publishes and %d cancels won", round, publishes, cancels)
		}
		final := s.must(200, "GET", "/internal/events/"+id, nil, nil)
		if final.str("status") != "cancelled" || final.body["version"] != float64(2+publishes) {
			t.Fatalf("round %d: final %s after %d publishes", round, final.raw, publishes)
		}
		want := []string{"event.cancelled"}
		if publishes == 1 {
			want = []string{"event.published", "event.cancelled"}
			publishedFirst++
		}
		if got := topics(s.outbox(id)); len(got) != len(want) || got[0] != want[0] {
			t.Fatalf("round %d: outbox %v, want %v", round, got, want)
		}
	}
	t.Logf("publish won before the cancel in %d of %d rounds", publishedFirst, rounds)
}

// TestConcurrentRemind: 20 simultaneous reminder requests send exactly one reminder, and
// every answer names the same send time.
func TestConcurrentRemind(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{MaxConns: 25})
	owner := organizer()
	id := s.published(owner, "Soon", 12*time.Hour)
	rs := s.concurrently(20, func(int) (string, string, *identity.Identity) {
		return "POST", "/internal/events/" + id + "/remind", nil
	})
	sent, at := 0, map[string]bool{}
	for _, r := range rs {
		if r.status != 200 {
			t.Fatalf("remind: %d %s", r.status, r.raw)
		}
		if r.body["sent"] == true {
			sent++
		}
		at[r.str("reminder_sent_at")] = true
	}
	if sent != 1 || len(at) != 1 {
		t.Fatalf("%d answers said sent, send times %v; want exactly one and one time", sent, at)
	}
	rows := s.outbox(id)
	if len(rows) != 2 || rows[1].Topic != "event.reminder" || rows[1].Data.Status != "published" || rows[1].Data.Version != 3 {
		t.Fatalf("outbox: %v", topics(rows))
	}
	// Later calls, after a cancel too, never send it again.
	if r := s.must(200, "POST", "/internal/events/"+id+"/remind", nil, nil); r.body["sent"] != false {
		t.Fatalf("repeat: %s", r.raw)
	}
	s.must(200, "POST", "/api/events/"+id+"/cancel", nil, owner)
	s.must(409, "POST", "/internal/events/"+id+"/remind", nil, nil)
	if got := topics(s.outbox(id)); len(got) != 3 {
		t.Fatalf("outbox after repeat and cancel: %v", got)
	}
}

// TestReminderLoop: the loop event.Run starts reminds the published events inside the
// configured lead time, and only them.
func TestReminderLoop(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{ReminderLead: 2 * time.Hour, ReminderInterval: 50 * time.Millisecond})
	owner := organizer()
	due := s.published(owner, "Due", time.Hour)
	later := s.published(owner, "Later", 3*time.Hour)
	draft := s.create(owner, "Draft", time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for len(s.outbox(due)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not send the due reminder")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a few more rounds: nothing else may be sent
	if got := topics(s.outbox(due)); len(got) != 2 || got[1] != "event.reminder" {
		t.Fatalf("due event: %v", got)
	}
	if got := topics(s.outbox(later)); len(got) != 1 {
		t.Fatalf("event outside the lead time: %v", got)
	}
	if got := topics(s.outbox(draft)); len(got) != 0 {
		t.Fatalf("draft: %v", got)
	}
	if r := s.must(200, "POST", "/internal/events/"+due+"/remind", nil, nil); r.body["sent"] != false {
		t.Fatalf("remind after the loop: %s", r.raw)
	}
}
