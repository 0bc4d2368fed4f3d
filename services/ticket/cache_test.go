package ticket

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeEvents stands in for the event service in the status cache's unit tests: it answers
// status, counts calls and can be held until released.
type fakeEvents struct {
	mu     sync.Mutex
	status string
	err    error
	calls  atomic.Int32
	hold   chan struct{} // when not nil, every fetch waits for it to be closed
}

func (f *fakeEvents) fetch(ctx context.Context, id uuid.UUID) (EventInfo, error) {
	f.calls.Add(1)
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return EventInfo{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return EventInfo{ID: id, Status: f.status}, f.err
}

func (f *fakeEvents) set(status string, err error) {
	f.mu.Lock()
	f.status, f.err = status, err
	f.mu.Unlock()
}

func (f *fakeEvents) holdFetches() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = make(chan struct{})
	hold := f.hold
	return func() {
		f.mu.Lock()
		f.hold = nil
		f.mu.Unlock()
		close(hold)
	}
}

// fakeClock is a settable now().
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }
func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// statusCacheTest is an event status cache over a fake event service and clock, with ttl 1 s,
// that has already cached "published" for the event id.
type statusCacheTest struct {
	ctx    context.Context
	c      *eventStatusCache
	events *fakeEvents
	clock  *fakeClock
	id     uuid.UUID
}

const testStatusTTL = time.Second

func newStatusCacheTest(t *testing.T) *statusCacheTest {
	t.Helper()
	events, clock := &fakeEvents{status: EventPublished}, newFakeClock()
	st := &statusCacheTest{ctx: context.Background(), events: events, clock: clock, id: uuid.New(),
		c: newEventStatusCache(testStatusTTL, clock.now, events.fetch)}
	if s, err := st.c.status(st.ctx, st.id); err != nil || s != EventPublished {
		t.Fatalf("first lookup: %q, %v", s, err)
	}
	return st
}

func TestEventStatusCacheRenewsAheadWithoutWaiting(t *testing.T) {
	t.Parallel()
	st := newStatusCacheTest(t)
	ctx, c, events, clock, id, ttl := st.ctx, st.c, st.events, st.clock, st.id, testStatusTTL
	clock.advance(ttl / 4)
	if _, err := c.status(ctx, id); err != nil || events.calls.Load() != 1 {
		t.Fatalf("a fresh answer asked the event service again (%d calls, %v)", events.calls.Load(), err)
	}

	// Past half the ttl: the cached answer is used at once, while one fetch renews it. The
	// fetch is held, so a lookup that waited for it would block this test.
	release := events.holdFetches()
	clock.advance(ttl / 2) // 0.75 ttl old
	for range 10 {
		if s, err := c.status(ctx, id); err != nil || s != EventPublished {
			t.Fatalf("lookup during the renewal: %q, %v", s, err)
		}
	}
	waitFor(t, "the background fetch", func() bool { return events.calls.Load() == 2 })
	time.Sleep(10 * time.Millisecond)
	if n := events.calls.Load(); n != 2 {
		t.Fatalf("%d fetches, want one renewal shared by every lookup", n)
	}
	release()
	waitFor(t, "the renewal to finish", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.refreshing) == 0 })

	// The renewed answer counts from when it was asked for (0.75 ttl): at 1.2 ttl from the
	// first fetch it is still fresh, no fetch.
	clock.advance(ttl * 45 / 100)
	if _, err := c.status(ctx, id); err != nil || events.calls.Load() != 2 {
		t.Fatalf("after the renewal: %d calls, %v", events.calls.Load(), err)
	}
}

func TestEventStatusCacheNeverUsesAnAnswerOlderThanTTL(t *testing.T) {
	t.Parallel()
	st := newStatusCacheTest(t)
	ctx, c, events, clock, id, ttl := st.ctx, st.c, st.events, st.clock, st.id, testStatusTTL
	// Nobody looked during the second half of the ttl, so nothing was renewed: the next
	// lookup waits for the event service, and gets its new answer.
	events.set(EventCancelled, nil)
	clock.advance(ttl)
	if s, err := c.status(ctx, id); err != nil || s != EventCancelled {
		t.Fatalf("lookup after the ttl: %q, %v; want the event service's cancelled", s, err)
	}
	if n := events.calls.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestEventStatusCacheRenewalSeesTheCancellation(t *testing.T) {
	t.Parallel()
	st := newStatusCacheTest(t)
	ctx, c, events, clock, id, ttl := st.ctx, st.c, st.events, st.clock, st.id, testStatusTTL
	events.set(EventCancelled, nil)
	clock.advance(ttl * 6 / 10)
	if s, _ := c.status(ctx, id); s != EventPublished {
		t.Fatalf("lookup that started the renewal: %q, want the cached published", s)
	}
	waitFor(t, "the renewal to record the cancellation", func() bool {
		s, err := c.status(ctx, id)
		return err == nil && s == EventCancelled
	})
}

func TestEventStatusCacheFailedRenewalIsNotCached(t *testing.T) {
	t.Parallel()
	st := newStatusCacheTest(t)
	ctx, c, events, clock, id, ttl := st.ctx, st.c, st.events, st.clock, st.id, testStatusTTL
	unavailable := errors.New("event service unavailable")
	events.set("", unavailable)
	clock.advance(ttl * 6 / 10)
	if s, err := c.status(ctx, id); err != nil || s != EventPublished {
		t.Fatalf("lookup that started the renewal: %q, %v", s, err)
	}
	waitFor(t, "the failed renewal", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return events.calls.Load() == 2 && len(c.refreshing) == 0
	})
	// The failure left the answer as it was (still fresh) ...
	if s, err := c.status(ctx, id); err != nil || s != EventPublished {
		t.Fatalf("within the ttl after a failed renewal: %q, %v", s, err)
	}
	// ... and once it expires, the failure is reported.
	clock.advance(ttl)
	if _, err := c.status(ctx, id); !errors.Is(err, unavailable) {
		t.Fatalf("after the ttl with the event service down: %v, want its error", err)
	}
}
