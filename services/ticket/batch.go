package ticket

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Grouping of purchases. A durable commit costs a disk flush, and every purchase of a type
// updates the same counter row, whose lock is held until the commit is flushed: one
// transaction per ticket therefore sells at most one ticket per flush. The batcher collects
// the concurrent purchases of a type and runs them as one statement (Store.PurchaseBatch):
// one guarded counter update for the batch, the tickets, their outbox rows and their
// Idempotency-Key records inserted together, one commit, and each waiting request answered
// with its own ticket or its own refusal.
//
// A batch leaves when it is full (BatchSize), when its first purchase has waited BatchWait,
// or, while BatchesInFlight batches of the type are already running, as soon as one of them
// finishes (those purchases have waited long enough). Each replica of the service batches on
// its own; the statement's guard on the counter row keeps the total within the quantity
// however many replicas run.

// Defaults of the purchase path's options.
const (
	DefaultBatchSize = 64
	DefaultBatchWait = time.Millisecond
	// DefaultBatchesInFlight is one: a second batch of the type only waits for the first's
	// counter row lock, which is held until the first's commit is flushed, and it leaves
	// early, so the purchases that arrive meanwhile wait for both flushes and the batches
	// are smaller. Alternating runs of the flash-sale benchmark (four a side, with and
	// without the consumers' 1 s fetch wait, 2026-11-28 01:06-01:24) found one in flight
	// cheaper and no slower: PostgreSQL's CPU per purchase at half the peak rate 0.46-0.50 ms
	// against 0.55-0.65, peak 1 809-2 001 purchases/s against 1 619-1 900, half-rate p99
	// 35-46 ms against 39-46.
	DefaultBatchesInFlight = 1
	// batchTimeout bounds one batch statement; it runs for all its purchases, detached
	// from any single request.
	batchTimeout = 10 * time.Second
)

var batchSizes = promauto.NewHistogram(prometheus.HistogramOpts{
	Name:    "sbor_ticket_purchase_batch_size",
	Help:    "Purchases grouped into one purchase statement.",
	Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
})

// waiter is one purchase waiting in a batch.
type waiter struct {
	ctx    context.Context
	np     newPurchase
	result chan batchResult // buffered: the batch never blocks on a request that left
}

// batchResult answers one waiter: sold, or err says why not (errSoldOut and the other
// refusals, a database error). A keyed purchase that was not sold may have lost its key to
// another request: the caller looks for that request's record before reporting err.
type batchResult struct {
	sold bool
	err  error
}

// batchStats counts what the batcher did, for tests and the metrics above.
type batchStats struct {
	Batches   int
	Purchases int
	Largest   int
	// Straddled counts batches that found fewer tickets left than they asked for.
	Straddled int
}

type batcher struct {
	size     int
	wait     time.Duration
	inFlight int
	// execute runs a batch of one type and answers every waiter.
	execute func(ct *cachedType, ws []*waiter) (straddled bool)

	mu     sync.Mutex
	queues map[uuid.UUID]*batchQueue
	stats  batchStats
}

// batchQueue is one type's purchases waiting for a batch.
type batchQueue struct {
	ct      *cachedType
	pending []*waiter
	running int
	timer   *time.Timer // armed while the first pending purchase waits for company
}

func newBatcher(size int, wait time.Duration, inFlight int, execute func(*cachedType, []*waiter) bool) *batcher {
	return &batcher{size: max(size, 1), wait: wait, inFlight: max(inFlight, 1), execute: execute, queues: map[uuid.UUID]*batchQueue{}}
}

// submit queues a purchase of ct; its answer arrives on w.result.
func (b *batcher) submit(ct *cachedType, w *waiter) {
	b.mu.Lock()
	q := b.queues[ct.tt.ID]
	if q == nil {
		q = &batchQueue{ct: ct}
		b.queues[ct.tt.ID] = q
	}
	q.pending = append(q.pending, w)
	ready := b.takeLocked(q, false)
	b.mu.Unlock()
	if len(ready) > 0 {
		go b.run(q, ready) // not on the request's goroutine: it waits for its own answer
	}
}

// takeLocked takes the batches that may start now, while the type has a free slot and a
// batch is ready: full, or waited for long enough. If one is not ready yet, it arms the
// timer of its first purchase.
func (b *batcher) takeLocked(q *batchQueue, waited bool) (ready [][]*waiter) {
	for q.running < b.inFlight && len(q.pending) > 0 {
		if len(q.pending) < b.size && !waited && b.wait > 0 {
			if q.timer == nil {
				q.timer = time.AfterFunc(b.wait, func() {
					b.mu.Lock()
					q.timer = nil
					ready := b.takeLocked(q, true)
					b.mu.Unlock()
					b.run(q, ready) // the timer's goroutine is ours
				})
			}
			break
		}
		n := min(len(q.pending), b.size)
		batch := make([]*waiter, n)
		copy(batch, q.pending)
		q.pending = append(q.pending[:0:0], q.pending[n:]...)
		q.running++
		ready = append(ready, batch)
	}
	if len(q.pending) == 0 {
		if q.timer != nil {
			q.timer.Stop()
			q.timer = nil
		}
		if q.running == 0 && b.queues[q.ct.tt.ID] == q {
			delete(b.queues, q.ct.tt.ID)
		}
	}
	return ready
}

// run runs the first of the batches taken, each other one on a goroutine of its own, and
// then, on the same goroutine, the type's batches that are ready as each ends: a new
// goroutine's stack grows through pgx's call depth for every batch (runtime.copystack was 3 %
// of the ticket service's CPU at half the flash-sale benchmark's peak rate), while a busy
// type's batches follow one another.
func (b *batcher) run(q *batchQueue, ready [][]*waiter) {
	for len(ready) > 0 {
		for _, more := range ready[1:] {
			go b.run(q, [][]*waiter{more})
		}
		b.runOne(q, ready[0])
		b.mu.Lock()
		q.running--
		ready = b.takeLocked(q, true)
		b.mu.Unlock()
	}
}

// runOne executes one batch and counts it.
func (b *batcher) runOne(q *batchQueue, batch []*waiter) {
	// A purchase whose request went away before its batch left is not made.
	live := batch[:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.result <- batchResult{err: err}
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	batchSizes.Observe(float64(len(live)))
	straddled := b.execute(q.ct, live)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Batches++
	b.stats.Purchases += len(live)
	b.stats.Largest = max(b.stats.Largest, len(live))
	if straddled {
		b.stats.Straddled++
	}
}

func (b *batcher) snapshot() batchStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}
