package ticket

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The batcher's own rules, with a stand-in for the purchase statement (the statement itself
// is tested against PostgreSQL in batch_test.go): every purchase is answered exactly once,
// no batch is larger than the size, no type ever has more batches running than allowed, the
// types do not wait for each other, and an idle batcher keeps no queue.
func TestBatcherKeepsItsLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		size, inFlight int
		wait           time.Duration
	}{
		{"one in flight", 8, 1, time.Millisecond},
		{"three in flight", 5, 3, time.Millisecond},
		{"no wait", 4, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			types := []*cachedType{{tt: TicketType{ID: uuid.New()}}, {tt: TicketType{ID: uuid.New()}}}
			var mu sync.Mutex
			running, peak := map[uuid.UUID]int{}, map[uuid.UUID]int{}
			var oversized atomic.Int64
			b := newBatcher(tc.size, tc.wait, tc.inFlight, func(ct *cachedType, ws []*waiter) bool {
				if len(ws) > tc.size {
					oversized.Add(1)
				}
				mu.Lock()
				running[ct.tt.ID]++
				peak[ct.tt.ID] = max(peak[ct.tt.ID], running[ct.tt.ID])
				mu.Unlock()
				time.Sleep(200 * time.Microsecond) // the statement
				mu.Lock()
				running[ct.tt.ID]--
				mu.Unlock()
				for _, w := range ws {
					w.result <- batchResult{sold: true}
				}
				return false
			})

			const buyers, each = 24, 40
			var answered atomic.Int64
			var wg sync.WaitGroup
			for i := range buyers {
				wg.Go(func() {
					for j := range each {
						w := &waiter{ctx: context.Background(), result: make(chan batchResult, 2)}
						b.submit(types[(i+j)%len(types)], w)
						if r := <-w.result; !r.sold || r.err != nil {
							t.Errorf("answer %+v", r)
						}
						select {
						case r := <-w.result:
							t.Errorf("a second answer %+v", r)
						default:
						}
						answered.Add(1)
					}
				})
			}
			wg.Wait()

			stats := settledStats(t, b)
			if answered.Load() != buyers*each || stats.Purchases != buyers*each {
				t.Fatalf("answered %d, batched %d, want %d", answered.Load(), stats.Purchases, buyers*each)
			}
			if oversized.Load() > 0 || stats.Largest > tc.size {
				t.Fatalf("%d batches over %d (largest %d)", oversized.Load(), tc.size, stats.Largest)
			}
			for _, ct := range types {
				if p := peak[ct.tt.ID]; p < 1 || p > tc.inFlight {
					t.Fatalf("type %v ran %d batches at once, allowed %d", ct.tt.ID, p, tc.inFlight)
				}
			}
			if stats.Batches >= stats.Purchases {
				t.Fatalf("%d batches for %d purchases: nothing was grouped", stats.Batches, stats.Purchases)
			}
		})
	}
}

// A purchase whose request went away before its batch left is answered with its context's
// error and is not handed to the statement; the rest of the batch is.
func TestBatcherSkipsLeavers(t *testing.T) {
	t.Parallel()
	ct := &cachedType{tt: TicketType{ID: uuid.New()}}
	var executed atomic.Int64
	b := newBatcher(8, 20*time.Millisecond, 1, func(_ *cachedType, ws []*waiter) bool {
		executed.Add(int64(len(ws)))
		for _, w := range ws {
			w.result <- batchResult{sold: true}
		}
		return false
	})
	gone, cancel := context.WithCancel(context.Background())
	left := &waiter{ctx: gone, result: make(chan batchResult, 1)}
	stayed := &waiter{ctx: context.Background(), result: make(chan batchResult, 1)}
	b.submit(ct, left)
	b.submit(ct, stayed)
	cancel()
	if r := <-left.result; r.err == nil || r.sold {
		t.Fatalf("the leaver got %+v", r)
	}
	if r := <-stayed.result; !r.sold {
		t.Fatalf("the one who stayed got %+v", r)
	}
	if stats := settledStats(t, b); executed.Load() != 1 || stats.Purchases != 1 {
		t.Fatalf("executed %d, counted %+v", executed.Load(), stats)
	}
}
