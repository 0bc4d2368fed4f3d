package main

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is what one request of a run ended with.
type outcome struct {
	ok     bool   // counted as a success (a ticket bought, a page read)
	status int    // HTTP status; 0 for a transport error
	code   string // problem+json code of an error answer
}

// label groups outcomes in the error table: "201", "409 sold_out", "transport error".
func (o outcome) label() string {
	if o.status == 0 {
		return "transport error"
	}
	s := strconv.Itoa(o.status)
	if o.code != "" {
		s += " " + o.code
	}
	return s
}

// stats summarises a run.
type stats struct {
	Name       string         `json:"name"`
	Clients    int            `json:"clients"`
	Seconds    float64        `json:"seconds"`
	Requests   int            `json:"requests"`
	Successes  int            `json:"successes"`
	PerSecond  float64        `json:"successes_per_s"`
	RequestsPS float64        `json:"requests_per_s"`
	TargetPS   float64        `json:"target_per_s,omitempty"` // paced runs
	P50Ms      float64        `json:"p50_ms"`
	P95Ms      float64        `json:"p95_ms"`
	P99Ms      float64        `json:"p99_ms"`
	MaxMs      float64        `json:"max_ms"`
	Outcomes   map[string]int `json:"outcomes"`
	Late       int            `json:"late,omitempty"` // paced runs: requests that found every slot busy
	// RoundsPS is each round's successes per second (alternating runs), to tell a steady
	// difference between the sides from one disturbed round.
	RoundsPS []float64 `json:"rounds_per_s,omitempty"`
}

// recorder gathers the latencies and outcomes of one run from many goroutines.
type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	outcomes  map[string]int
	successes int
}

func newRecorder() *recorder { return &recorder{outcomes: map[string]int{}} }

func (r *recorder) add(lat time.Duration, o outcome) {
	r.mu.Lock()
	r.latencies = append(r.latencies, lat)
	r.outcomes[o.label()]++
	if o.ok {
		r.successes++
	}
	r.mu.Unlock()
}

func (r *recorder) successCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.successes
}

func (r *recorder) stats(name string, clients int, elapsed time.Duration) stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.latencies)
	s := stats{Name: name, Clients: clients, Seconds: round(elapsed.Seconds(), 2), Requests: len(r.latencies),
		Successes: r.successes, Outcomes: r.outcomes}
	if secs := elapsed.Seconds(); secs > 0 {
		s.PerSecond = round(float64(r.successes)/secs, 1)
		s.RequestsPS = round(float64(len(r.latencies))/secs, 1)
	}
	s.P50Ms, s.P95Ms, s.P99Ms = percentileMs(r.latencies, 50), percentileMs(r.latencies, 95), percentileMs(r.latencies, 99)
	if n := len(r.latencies); n > 0 {
		s.MaxMs = ms(r.latencies[n-1])
	}
	return s
}

// percentileMs is the nearest-rank percentile of sorted durations, in milliseconds.
func percentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return ms(sorted[rank-1])
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// request is one request of a run: worker is the client's number, seq counts the requests
// of the whole run.
type request func(ctx context.Context, worker int, seq int64) outcome

// closedLoop runs clients workers, each sending its next request as soon as the previous one
// is answered, until duration has passed or, when limit > 0, limit requests were sent.
// Requests still in flight at the end are waited for, not abandoned: an abandoned purchase
// may still commit, and its ticket would be missing from the checks.
func closedLoop(ctx context.Context, name string, clients int, duration time.Duration, limit int64, do request) stats {
	rec := newRecorder()
	elapsed := closedLoopInto(ctx, rec, clients, duration, limit, do, nil)
	return rec.stats(name, clients, elapsed)
}

// alternating runs each side as a closed loop in turn, rounds times each, for duration in all
// per side, and summarises each side over its rounds. Comparing runs made one after the
// other on a shared machine compares whatever else ran at each moment; alternating in short
// rounds spreads that over every side, and the order a b c, c b a, a b c, … (rather than
// a b c, a b c, …) keeps work that fades or grows over the rounds from always falling on the
// same side. One round of each, not counted, goes first: the first round of a side opens its
// connections. around, if not nil, is called before each counted round of side i and
// returns what to call after it.
func alternating(ctx context.Context, names []string, clients int, duration time.Duration, rounds int, sides []request, around func(i int) func()) []stats {
	// side is one side's tally over its counted rounds.
	type side struct {
		rec      *recorder
		seq      atomic.Int64
		elapsed  time.Duration
		perRound []float64
	}
	tally := make([]side, len(sides))
	slice := duration / time.Duration(rounds)
	for i, do := range sides {
		tally[i].rec = newRecorder()
		closedLoopInto(ctx, newRecorder(), clients, slice, 0, do, &tally[i].seq)
	}
	for n := range rounds {
		for j := range sides {
			i := j
			if n%2 == 1 {
				i = len(sides) - 1 - j
			}
			t := &tally[i]
			after := func() {}
			if around != nil {
				after = around(i)
			}
			before := t.rec.successCount()
			took := closedLoopInto(ctx, t.rec, clients, slice, 0, sides[i], &t.seq)
			after()
			t.elapsed += took
			t.perRound = append(t.perRound, round(float64(t.rec.successCount()-before)/took.Seconds(), 0))
		}
	}
	out := make([]stats, len(sides))
	for i := range tally {
		out[i] = tally[i].rec.stats(names[i], clients, tally[i].elapsed)
		out[i].RoundsPS = tally[i].perRound
	}
	return out
}

// closedLoopInto is closedLoop recording into rec, numbering requests from seq (a fresh
// counter when nil); it returns how long the run took.
func closedLoopInto(ctx context.Context, rec *recorder, clients int, duration time.Duration, limit int64, do request, seq *atomic.Int64) time.Duration {
	if seq == nil {
		seq = new(atomic.Int64)
	}
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(duration)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				n := seq.Add(1)
				if limit > 0 && n > limit {
					return
				}
				t0 := time.Now()
				o := do(ctx, w, n)
				rec.add(time.Since(t0), o)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// openLoop sends rate requests a second on a fixed schedule for duration, with at most
// maxInFlight outstanding. Latency counts from each request's scheduled time, so a stalled
// server is not hidden by requests that were never sent (coordinated omission).
func openLoop(ctx context.Context, name string, rate float64, duration time.Duration, maxInFlight int, do request) stats {
	rec := newRecorder()
	interval := time.Duration(float64(time.Second) / rate)
	slots := make(chan int, maxInFlight)
	for i := range maxInFlight {
		slots <- i
	}
	var wg sync.WaitGroup
	late := 0
	start := time.Now()
	var seq int64
	for next := start; next.Sub(start) < duration; next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return rec.stats(name, maxInFlight, time.Since(start))
			case <-time.After(d):
			}
		}
		var slot int
		select {
		case slot = <-slots:
		default:
			late++
			slot = <-slots
		}
		seq++
		wg.Add(1)
		go func(scheduled time.Time, n int64) {
			defer wg.Done()
			o := do(ctx, slot, n)
			rec.add(time.Since(scheduled), o)
			slots <- slot
		}(next, seq)
	}
	wg.Wait()
	s := rec.stats(name, maxInFlight, time.Since(start))
	s.TargetPS, s.Late = round(rate, 1), late
	return s
}

// firstError keeps the first error set from any goroutine.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
