package ticket

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"
)

// Live counts (GET /api/events/{id}/stats) are served from a per-event snapshot in memory,
// never from a query per request: a door with a dozen scanners and an organizer's dashboard
// refreshing every second would otherwise add a query per screen per refresh to the
// database that sells the tickets.
//
// How fresh, exactly: a snapshot is taken by one query (counts, organizer and staff in one
// statement) and served until it is StatsInterval old (1 s by default); the first request
// after that refreshes it, and every request arriving meanwhile waits for that one refresh
// (singleflight) instead of querying. So an answer reflects the database as of its as_of,
// which is at most StatsInterval plus one query's duration before the answer; and whatever
// the request rate, a replica costs at most one stats query per event per StatsInterval.
// Authorization is decided from the same snapshot, so a revoked staff member may still read
// the counts (never check in) for up to the same bound.

// DefaultStatsInterval is how long a stats snapshot is served before it is refreshed.
const DefaultStatsInterval = time.Second

// maxStatsSnapshots bounds the snapshots kept; past it the cache starts over (it holds only
// what one query brings back).
const maxStatsSnapshots = 10_000

// EventStats are an event's live counts.
type EventStats struct {
	EventID uuid.UUID
	Types   []TypeStats
	// AsOf is when the query that read them started: the counts are at least this fresh.
	AsOf time.Time
}

// Totals sums the counts of every type.
func (s EventStats) Totals() (sold, checkedIn, remaining int) {
	for _, t := range s.Types {
		sold += t.Sold
		checkedIn += t.CheckedIn
		remaining += t.Remaining()
	}
	return sold, checkedIn, remaining
}

// statsSnapshot is one refresh's result: the counts and who may read them.
type statsSnapshot struct {
	stats     EventStats
	organizer uuid.UUID // uuid.Nil: the event is unknown (to this service and the event service)
	staff     map[uuid.UUID]bool
}

func (s *statsSnapshot) mayRead(userID uuid.UUID) bool {
	return s.organizer != uuid.Nil && (s.organizer == userID || s.staff[userID])
}

// statsCache keeps a snapshot per event, refreshed at most once per interval.
type statsCache struct {
	interval time.Duration // <= 0: every request refreshes (tests)
	now      func() time.Time
	load     func(ctx context.Context, eventID uuid.UUID) (*statsSnapshot, error)

	mu        sync.Mutex
	snapshots map[uuid.UUID]*statsSnapshot
	refreshes singleflight.Group
}

func newStatsCache(interval time.Duration, now func() time.Time, load func(context.Context, uuid.UUID) (*statsSnapshot, error)) *statsCache {
	return &statsCache{interval: interval, now: now, load: load, snapshots: map[uuid.UUID]*statsSnapshot{}}
}

// get returns a snapshot of the event no older than the interval (as of its query's start).
func (c *statsCache) get(ctx context.Context, eventID uuid.UUID) (*statsSnapshot, error) {
	c.mu.Lock()
	s := c.snapshots[eventID]
	c.mu.Unlock()
	if s != nil && c.now().Sub(s.stats.AsOf) < c.interval {
		return s, nil
	}
	v, err, _ := c.refreshes.Do(eventID.String(), func() (any, error) {
		// Someone may have refreshed it while this call waited to start.
		c.mu.Lock()
		s := c.snapshots[eventID]
		c.mu.Unlock()
		if s != nil && c.now().Sub(s.stats.AsOf) < c.interval {
			return s, nil
		}
		// The refresh is shared: it must not fail because the request that started it left.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedCallTimeout)
		defer cancel()
		s, err := c.load(ctx, eventID)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if len(c.snapshots) >= maxStatsSnapshots {
			c.snapshots = map[uuid.UUID]*statsSnapshot{}
		}
		c.snapshots[eventID] = s
		c.mu.Unlock()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*statsSnapshot), nil
}
