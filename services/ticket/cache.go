package ticket

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"
)

// Caches of the purchase path. Neither is ever the last word: the purchase statement checks
// the counter, the sales window and the recorded cancellation on the counter row itself, so
// a stale cache can only make a purchase reach that check, never make it succeed wrongly.

// maxCachedTypes bounds the type cache; past it the cache starts over. Types are only ever
// looked up by id from a purchase, so this bounds memory, not correctness.
const maxCachedTypes = 10_000

// sharedCallTimeout bounds a load or fetch that several requests wait for.
const sharedCallTimeout = 5 * time.Second

// cachedType is a ticket type as loaded once. Its fields other than the counter never change
// (a type is not updated after creation); Sold and EventCancelledAt are as loaded, stale, and
// never read: soldOut and the event status cache hold what changes.
type cachedType struct {
	tt TicketType
	// soldOut is set once the type is seen sold out. It stays true: sold never decreases
	// (a cancellation keeps the count, and there are no refunds).
	soldOut atomic.Bool
}

// typeCache holds the types purchases ask for, so a purchase costs no read of its type.
type typeCache struct {
	load func(ctx context.Context, eventID, id uuid.UUID) (TicketType, error)

	mu      sync.Mutex
	entries map[uuid.UUID]*cachedType
	loads   singleflight.Group
}

func newTypeCache(load func(ctx context.Context, eventID, id uuid.UUID) (TicketType, error)) *typeCache {
	return &typeCache{load: load, entries: map[uuid.UUID]*cachedType{}}
}

// get returns the type id of event eventID; a type of another event is errTypeNotFound, as
// an unknown one is.
func (c *typeCache) get(ctx context.Context, eventID, id uuid.UUID) (*cachedType, error) {
	c.mu.Lock()
	e := c.entries[id]
	c.mu.Unlock()
	if e == nil {
		v, err, _ := c.loads.Do(id.String(), func() (any, error) {
			// The load is shared: it must not fail because the request that started it went away.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedCallTimeout)
			defer cancel()
			tt, err := c.load(ctx, eventID, id)
			if err != nil {
				return nil, err
			}
			e := &cachedType{tt: tt}
			e.soldOut.Store(tt.Sold >= tt.Quantity)
			c.mu.Lock()
			if len(c.entries) >= maxCachedTypes {
				c.entries = map[uuid.UUID]*cachedType{}
			}
			c.entries[id] = e
			c.mu.Unlock()
			return e, nil
		})
		if err != nil {
			return nil, err
		}
		e = v.(*cachedType)
	}
	if e.tt.EventID != eventID {
		return nil, errTypeNotFound
	}
	return e, nil
}

// eventStatusCache remembers what the event service said of events, for ttl: a published
// event is not asked about again for ttl, a cancelled one never again. Other answers (a draft,
// unknown, an error) are not cached. Cancel marks an event cancelled at once; a status
// fetched before it cannot undo that.
//
// An answer older than half the ttl is still used, and a fetch starts in the background
// (one per event): under steady traffic the answer is renewed before it expires, so no
// purchase waits for the event service, while none is ever decided by an answer older than
// ttl.
type eventStatusCache struct {
	ttl   time.Duration // <= 0: every lookup asks the event service
	now   func() time.Time
	fetch func(ctx context.Context, id uuid.UUID) (EventInfo, error)

	mu         sync.Mutex
	entries    map[uuid.UUID]eventStatus
	refreshing map[uuid.UUID]bool // background fetches under way
	fetches    singleflight.Group
}

type eventStatus struct {
	status    string
	fetchedAt time.Time
}

// maxCachedEvents bounds the status cache the same way as the type cache.
const maxCachedEvents = 10_000

func newEventStatusCache(ttl time.Duration, now func() time.Time, fetch func(context.Context, uuid.UUID) (EventInfo, error)) *eventStatusCache {
	return &eventStatusCache{ttl: ttl, now: now, fetch: fetch, entries: map[uuid.UUID]eventStatus{}, refreshing: map[uuid.UUID]bool{}}
}

// status returns the event's status: cancelled if it was ever seen cancelled, the cached
// answer if it is younger than ttl, else the event service's answer (one call at a time per
// event, shared by everyone waiting for it).
func (c *eventStatusCache) status(ctx context.Context, id uuid.UUID) (string, error) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && e.status == EventCancelled {
		return e.status, nil
	}
	if ok && c.ttl > 0 {
		if age := c.now().Sub(e.fetchedAt); age < c.ttl {
			if age >= c.ttl/2 {
				c.refreshAhead(ctx, id)
			}
			return e.status, nil
		}
	}
	if c.ttl <= 0 {
		ev, err := c.fetch(ctx, id)
		if err != nil {
			return "", err
		}
		c.remember(id, ev.Status, c.now())
		return c.latest(id, ev.Status), nil
	}
	status, err := c.sharedFetch(ctx, id)
	if err != nil {
		return "", err
	}
	return c.latest(id, status), nil
}

// sharedFetch asks the event service once for everyone asking about id meanwhile, and
// remembers the answer as of the moment it asked.
func (c *eventStatusCache) sharedFetch(ctx context.Context, id uuid.UUID) (string, error) {
	v, err, _ := c.fetches.Do(id.String(), func() (any, error) {
		// The fetch is shared: it must not fail because the request that started it went away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedCallTimeout)
		defer cancel()
		fetchedAt := c.now()
		ev, err := c.fetch(ctx, id)
		if err != nil {
			return "", err
		}
		c.remember(id, ev.Status, fetchedAt)
		return ev.Status, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// refreshAhead renews id's answer in the background, unless that is already under way. A
// failure is not reported: the answer expires and the next lookup asks, and reports.
func (c *eventStatusCache) refreshAhead(ctx context.Context, id uuid.UUID) {
	c.mu.Lock()
	if c.refreshing[id] {
		c.mu.Unlock()
		return
	}
	c.refreshing[id] = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.refreshing, id)
			c.mu.Unlock()
		}()
		_, _ = c.sharedFetch(ctx, id)
	}()
}

// remember caches a published or cancelled status fetched at fetchedAt; nothing replaces a
// cancellation.
func (c *eventStatusCache) remember(id uuid.UUID, status string, fetchedAt time.Time) {
	if status != EventPublished && status != EventCancelled {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[id].status == EventCancelled {
		return
	}
	if len(c.entries) >= maxCachedEvents {
		c.entries = map[uuid.UUID]eventStatus{}
	}
	c.entries[id] = eventStatus{status: status, fetchedAt: fetchedAt}
}

// latest is status unless the event was marked cancelled meanwhile.
func (c *eventStatusCache) latest(id uuid.UUID, status string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[id].status == EventCancelled {
		return EventCancelled
	}
	return status
}

// cancel records that the event is cancelled, for good.
func (c *eventStatusCache) cancel(id uuid.UUID) {
	c.mu.Lock()
	c.entries[id] = eventStatus{status: EventCancelled, fetchedAt: c.now()}
	c.mu.Unlock()
}
