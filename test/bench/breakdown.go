package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Where a run's time goes, from each service's own Prometheus metrics scraped before and
// after the run, and the machine's CPU from /proc/stat: a latency the client sees but the
// gateway does not is spent in the client, the kernel or waiting for a CPU; one the gateway
// sees but the ticket service does not is the gateway's.

// breakdown is what one run cost, per service and for the machine.
type breakdown struct {
	Run string `json:"run"`
	// MachineBusyPct is the share of the machine's CPU time that was not idle during the
	// run (every process, the bench's own clients and other users of the machine included).
	MachineBusyPct float64 `json:"machine_busy_pct"`
	// CPUPerRequestMs is each service's CPU time (user + system) per request of the run, and
	// that of PostgreSQL, Kafka and the bench itself (its clients).
	CPUPerRequestMs map[string]float64 `json:"cpu_per_request_ms"`
	// GCCycles and GCPauseMs are each service's garbage collections during the run and their
	// total stop-the-world pause.
	GCCycles  map[string]float64 `json:"gc_cycles"`
	GCPauseMs map[string]float64 `json:"gc_pause_ms"`
	// Gateway and Ticket are the purchase route's latency as each process measured it,
	// estimated from histogram buckets (as PromQL's histogram_quantile does).
	GatewayP50Ms float64 `json:"gateway_p50_ms"`
	GatewayP99Ms float64 `json:"gateway_p99_ms"`
	TicketP50Ms  float64 `json:"ticket_p50_ms"`
	TicketP99Ms  float64 `json:"ticket_p99_ms"`
	// MeanBatch is the mean number of purchases per purchase statement.
	MeanBatch float64 `json:"mean_batch"`
	// TicketPoolWaitPct is the share of the ticket service's connection acquisitions that
	// found the pool empty and waited.
	TicketPoolWaitPct float64 `json:"ticket_pool_wait_pct"`
	// CommitP50Ms and CommitP99Ms are a lone durable commit's latency on the same
	// PostgreSQL during the run (commitProbe).
	CommitP50Ms float64 `json:"commit_p50_ms"`
	CommitP99Ms float64 `json:"commit_p99_ms"`
}

// snapshot is every service's metrics and the machine's CPU counters at one moment.
type snapshot struct {
	metrics map[string]map[string]*dto.MetricFamily
	cpu     cpuTimes
	// procCPU is the CPU seconds used so far by the processes the services do not report
	// themselves: PostgreSQL (the postmaster and its backends), Kafka's JVM and the bench.
	procCPU map[string]float64
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times; 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// treeCPU returns the CPU seconds (user + system) of each root process and its descendants,
// read from /proc: the live ones, and those that exited and were waited for (PostgreSQL's
// backends of closed connections count in the postmaster's children times). A root of 0 is
// skipped.
func treeCPU(roots map[string]int) map[string]float64 {
	type stat struct {
		ppid int
		cpu  float64
	}
	stats := map[int]stat{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces; the fields after it are plain.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var ticks float64
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, and those of children waited for
			v, _ := strconv.ParseFloat(f[i], 64)
			ticks += v
		}
		stats[pid] = stat{ppid: ppid, cpu: ticks / clockTicks}
	}
	out := map[string]float64{}
	for name, root := range roots {
		if root == 0 {
			continue
		}
		for pid, st := range stats {
			for p := pid; p > 1; p = stats[p].ppid {
				if p == root {
					out[name] += st.cpu
					break
				}
				if _, ok := stats[p]; !ok {
					break
				}
			}
		}
	}
	return out
}

type cpuTimes struct{ busy, total float64 }

func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	var t cpuTimes
	for i, f := range fields[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

func (p *platform) snapshot(ctx context.Context) snapshot {
	roots := map[string]int{"postgres": p.pg.PID()}
	if p.kafka != nil {
		roots["kafka"] = p.kafka.PID()
	}
	if p.relayPID != 0 {
		roots["tcp-relay"] = p.relayPID
	}
	s := snapshot{metrics: map[string]map[string]*dto.MetricFamily{}, cpu: readCPU(), procCPU: treeCPU(roots)}
	// The bench alone: every other process here is its descendant.
	var self syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err == nil {
		s.procCPU["bench"] = time.Duration(self.Utime.Nano() + self.Stime.Nano()).Seconds()
	}
	for _, name := range serviceNames {
		if addr := p.metrics[name]; addr != "" {
			if fams, err := scrape(ctx, addr); err == nil {
				s.metrics[name] = fams
			} else {
				logf("metrics of %s: %v", name, err)
			}
		}
	}
	return s
}

func scrape(ctx context.Context, addr string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// value sums the samples of a counter or gauge family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		if !labelsMatch(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Summary != nil:
			total += float64(m.GetSummary().GetSampleCount())
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// summarySum is the sum of a summary or histogram family.
func summarySum(fams map[string]*dto.MetricFamily, name string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.Summary != nil:
			total += m.GetSummary().GetSampleSum()
		case m.Histogram != nil:
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// buckets returns the cumulative bucket counts of the first histogram in the family whose
// labels include want.
func buckets(fams map[string]*dto.MetricFamily, name string, want map[string]string) (bounds, counts []float64) {
	f := fams[name]
	if f == nil {
		return nil, nil
	}
	for _, m := range f.GetMetric() {
		if m.Histogram == nil || !labelsMatch(m, want) {
			continue
		}
		for _, b := range m.GetHistogram().GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
			counts = append(counts, float64(b.GetCumulativeCount()))
		}
		return bounds, counts
	}
	return nil, nil
}

// quantileMs estimates the q-quantile, in milliseconds, of the observations between two
// snapshots of one histogram, interpolating inside a bucket.
func quantileMs(before, after map[string]*dto.MetricFamily, name string, want map[string]string, q float64) float64 {
	bounds, counts := buckets(after, name, want)
	_, prior := buckets(before, name, want)
	if len(bounds) == 0 {
		return 0
	}
	delta := make([]float64, len(counts))
	for i := range counts {
		delta[i] = counts[i]
		if i < len(prior) {
			delta[i] -= prior[i]
		}
	}
	total := value(after, name, want) - value(before, name, want)
	if total <= 0 {
		return 0
	}
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, bound := range bounds {
		if delta[i] >= rank {
			return round(1000*(lower+(bound-lower)*(rank-prev)/math.Max(delta[i]-prev, 1e-9)), 1)
		}
		lower, prev = bound, delta[i]
	}
	return round(1000*bounds[len(bounds)-1], 1) // past the last finite bucket: at least that
}

// cpuAccount adds up the CPU each process used over several stretches of time (the rounds of
// one side of the gateway-overhead comparison), for a breakdown with CPU figures only.
type cpuAccount struct {
	busy, total float64
	seconds     map[string]float64
}

func (a *cpuAccount) add(before, after snapshot) {
	if a.seconds == nil {
		a.seconds = map[string]float64{}
	}
	a.busy += after.cpu.busy - before.cpu.busy
	a.total += after.cpu.total - before.cpu.total
	for name, v := range after.procCPU {
		if b, ok := before.procCPU[name]; ok {
			a.seconds[name] += v - b
		}
	}
	for _, name := range serviceNames {
		if am, bm := after.metrics[name], before.metrics[name]; am != nil && bm != nil {
			a.seconds[name] += value(am, "process_cpu_seconds_total", nil) - value(bm, "process_cpu_seconds_total", nil)
		}
	}
}

func (a *cpuAccount) breakdown(run string, n int) breakdown {
	bd := breakdown{Run: run, CPUPerRequestMs: map[string]float64{}}
	if a.total > 0 {
		bd.MachineBusyPct = round(100*a.busy/a.total, 1)
	}
	for name, v := range a.seconds {
		if n > 0 {
			bd.CPUPerRequestMs[name] = round(1000*v/float64(n), 3)
		}
	}
	return bd
}

// diff computes the breakdown of a run of n requests between two snapshots.
func diff(run string, before, after snapshot, n int) breakdown {
	var cpu cpuAccount
	cpu.add(before, after)
	bd := cpu.breakdown(run, n)
	bd.GCCycles, bd.GCPauseMs = map[string]float64{}, map[string]float64{}
	for _, name := range serviceNames {
		a, b := after.metrics[name], before.metrics[name]
		if a == nil || b == nil {
			continue
		}
		bd.GCCycles[name] = value(a, "go_gc_duration_seconds", nil) - value(b, "go_gc_duration_seconds", nil)
		bd.GCPauseMs[name] = round(1000*(summarySum(a, "go_gc_duration_seconds")-summarySum(b, "go_gc_duration_seconds")), 2)
	}
	route := map[string]string{"method": "POST", "route": "/api/events/{id}/tickets"}
	if a, b := after.metrics["gateway"], before.metrics["gateway"]; a != nil && b != nil {
		bd.GatewayP50Ms = quantileMs(b, a, "sbor_http_request_duration_seconds", route, .5)
		bd.GatewayP99Ms = quantileMs(b, a, "sbor_http_request_duration_seconds", route, .99)
	}
	if a, b := after.metrics["ticket"], before.metrics["ticket"]; a != nil && b != nil {
		bd.TicketP50Ms = quantileMs(b, a, "sbor_http_request_duration_seconds", route, .5)
		bd.TicketP99Ms = quantileMs(b, a, "sbor_http_request_duration_seconds", route, .99)
		if batches := value(a, "sbor_ticket_purchase_batch_size", nil) - value(b, "sbor_ticket_purchase_batch_size", nil); batches > 0 {
			bd.MeanBatch = round((summarySum(a, "sbor_ticket_purchase_batch_size")-summarySum(b, "sbor_ticket_purchase_batch_size"))/batches, 1)
		}
		svc := map[string]string{"service": "ticket"}
		acquires := value(a, "sbor_db_pool_acquires_total", svc) - value(b, "sbor_db_pool_acquires_total", svc)
		if acquires > 0 {
			waits := value(a, "sbor_db_pool_empty_acquires_total", svc) - value(b, "sbor_db_pool_empty_acquires_total", svc)
			bd.TicketPoolWaitPct = round(100*waits/acquires, 1)
		}
	}
	return bd
}

func renderBreakdowns(bds []breakdown) string {
	if len(bds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Where the time goes (each process's own metrics; latency quantiles from histogram buckets):\n\n")
	b.WriteString("| run | machine busy % | gateway p50/p99 ms | ticket p50/p99 ms | lone commit p50/p99 ms | mean batch | ticket pool waits % | CPU ms per request | GC cycles (pause ms) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, bd := range bds {
		names := make([]string, 0, len(bd.CPUPerRequestMs))
		for name := range bd.CPUPerRequestMs {
			names = append(names, name)
		}
		sort.Strings(names)
		var cpu, gc []string
		for _, name := range names {
			cpu = append(cpu, fmt.Sprintf("%s %.2f", name, bd.CPUPerRequestMs[name]))
			gc = append(gc, fmt.Sprintf("%s %.0f (%.1f)", name, bd.GCCycles[name], bd.GCPauseMs[name]))
		}
		if bd.GCCycles == nil { // a CPU-only breakdown (cpuAccount): the GET comparison
			fmt.Fprintf(&b, "| %s | %.0f | – | – | – | – | – | %s | – |\n", bd.Run, bd.MachineBusyPct, strings.Join(cpu, ", "))
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f | %.1f | %s | %s |\n", bd.Run, bd.MachineBusyPct,
			bd.GatewayP50Ms, bd.GatewayP99Ms, bd.TicketP50Ms, bd.TicketP99Ms, bd.CommitP50Ms, bd.CommitP99Ms, bd.MeanBatch, bd.TicketPoolWaitPct,
			strings.Join(cpu, ", "), strings.Join(gc, ", "))
	}
	b.WriteString("\n")
	return b.String()
}

// commitProbe measures, while a run goes on, how long a lone durable commit takes on the
// bench's PostgreSQL: one single-row insert every 20 ms on a connection of its own. It tells
// how much of a purchase's latency the disk's flush alone costs under that load.
type commitProbe struct {
	stop chan struct{}
	done chan []time.Duration
}

func startCommitProbe(ctx context.Context, url string) (*commitProbe, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	p := &commitProbe{stop: make(chan struct{}), done: make(chan []time.Duration, 1)}
	go func() {
		defer conn.Close(context.WithoutCancel(ctx))
		var lat []time.Duration
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				p.done <- lat
				return
			case <-ctx.Done():
				p.done <- lat
				return
			case <-tick.C:
			}
			t0 := time.Now()
			if _, err := conn.Exec(ctx, `INSERT INTO bench_commit_probe DEFAULT VALUES`); err == nil {
				lat = append(lat, time.Since(t0))
			}
		}
	}()
	return p, nil
}

// finish stops the probe and returns the commits' p50 and p99 in milliseconds.
func (p *commitProbe) finish() (p50, p99 float64) {
	if p == nil {
		return 0, 0
	}
	close(p.stop)
	lat := <-p.done
	slices.Sort(lat)
	return percentileMs(lat, 50), percentileMs(lat, 99)
}

// settleDatabases vacuums and analyses the databases the purchase and limit runs wrote to,
// checkpoints, writes the page cache back, then waits (at most maxWait) until no autovacuum
// worker is running, so that maintenance the earlier runs made due, and the writes it makes,
// do not land in the middle of the gateway-overhead comparison, where they slowed whichever
// side they fell on by as much as the gateway's own cost.
func settleDatabases(ctx context.Context, urls []string, maxWait time.Duration) (time.Duration, error) {
	start := time.Now()
	for _, url := range urls {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, err
		}
		_, err = conn.Exec(ctx, "VACUUM (ANALYZE)")
		conn.Close(ctx)
		if err != nil {
			return 0, err
		}
	}
	conn, err := pgx.Connect(ctx, urls[0])
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, err
	}
	syscall.Sync()
	for quiet := 0; quiet < 4 && time.Since(start) < maxWait; {
		var workers int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`).Scan(&workers); err != nil {
			return 0, err
		}
		if workers == 0 {
			quiet++
		} else {
			quiet = 0
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}
