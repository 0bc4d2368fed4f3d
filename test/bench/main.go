// Command bench is Sbor's flash-sale benchmark (make bench): it starts the platform the way
// the end-to-end suite does — the sbor binary, every target its own process, a PostgreSQL
// server of its own with durable commits (fsync on, unlike the tests' server) and Apache
// Kafka (KAFKA_BROKERS reuses a running broker) — and measures the purchase path against what
// the database itself allows.
//
// Phases (setup is not timed):
//
//  1. setup: an organizer, a published event with a type of -quantity tickets (the
//     throughput runs) and one of -soldout-quantity (the sell-out run), -buyers registered
//     buyers with access tokens, and a 2 s warm-up;
//  2. peak: -clients clients buy through the gateway as fast as they are answered, for
//     -duration;
//  3. half rate: purchases paced at half the peak rate (open loop, latency counted from each
//     purchase's scheduled time), for half as long;
//  4. sell-out: -clients clients make -soldout-attempts purchase attempts (five times the
//     quantity by default) at the small type: exactly its quantity must sell;
//  5. limit: the same PostgreSQL driven directly with pgx at the same concurrency for
//     -limit-duration, one transaction per ticket (guarded counter update, ticket insert,
//     outbox insert, commit) on the ticket service's schema;
//  6. gateway overhead: GET /api/tickets through the gateway with the buyers' tokens against
//     the same GET straight to the ticket service with the identity headers set, and, as
//     the floor to read it against, that direct GET through a bare TCP relay in its own
//     process (relay.go), in sixteen alternating rounds each, a b c c b a a b c … (so that a
//     change in the machine's load does not decide the comparison), after one uncounted
//     round each and once the databases written to so far are vacuumed, checkpointed and
//     written back;
//  7. checks: per type, tickets answered 201 = the counter's sold = rows in the ticket
//     database = ticket.purchased messages on Kafka, never more than the quantity; each
//     service's resident memory when idle (started, before any request) and at its peak
//     (VmHWM).
//
// Around the peak and half-rate runs it scrapes every service's Prometheus metrics and the
// machine's CPU counters, and reports where the time went: the purchase route's latency as
// the gateway and the ticket service measured it, the mean purchase batch, the ticket
// service's pool waits, each service's CPU per request and its garbage collections, and how
// long a lone durable commit took on the same PostgreSQL meanwhile.
//
// After each purchase run it waits (at most -notify-timeout) for that run's "ticket
// purchased" notifications and measures purchase → notification delay, so one run's backlog
// is not charged to the next.
//
// It writes a table and JSON under .bench/ (git-ignored) and ends with one line:
//
//	bench: e2e_per_s=<n> limit_per_s=<n> ratio=<x.xx> p99_ms=<n> oversold=<n> notify_p99_ms=<n>
//
// where e2e_per_s is the peak run's purchases per second, p99_ms the 99th-percentile latency
// of the half-rate run and notify_p99_ms the delay's 99th percentile over the peak run's
// tickets. An oversell, a failed check, a 5xx or transport error, or a service exiting makes
// it exit 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/identity"
)

type config struct {
	Clients          int           `json:"clients"`
	Duration         time.Duration `json:"duration"`
	LimitDuration    time.Duration `json:"limit_duration"`
	Buyers           int           `json:"buyers"`
	Quantity         int           `json:"quantity"`
	SoldOutQuantity  int           `json:"soldout_quantity"`
	SoldOutAttempts  int           `json:"soldout_attempts"`
	OverheadDuration time.Duration `json:"overhead_duration"`
	NotifyTimeout    time.Duration `json:"notify_timeout"`
	Fsync            bool          `json:"fsync"`
	PProf            bool          `json:"pprof"`
	GoMaxProcs       int           `json:"gomaxprocs"`
	Env              envFlag       `json:"env,omitempty"`
	Src              string        `json:"src,omitempty"`
	Overlay          string        `json:"overlay,omitempty"`
	Out              string        `json:"-"`
}

// envFlag collects repeated -env KEY=VALUE flags.
type envFlag map[string]string

func (e envFlag) String() string { return fmt.Sprint(map[string]string(e)) }

func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	e[k] = v
	return nil
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == relayCommand {
		err := runRelay(os.Args[2])
		fmt.Fprintln(os.Stderr, "bench relay:", err)
		os.Exit(1)
	}
	cfg := config{Env: envFlag{}}
	flag.IntVar(&cfg.Clients, "clients", 64, "concurrent clients in every run")
	flag.DurationVar(&cfg.Duration, "duration", 15*time.Second, "length of the peak run (the half-rate run takes half as long, at least 5s)")
	flag.DurationVar(&cfg.LimitDuration, "limit-duration", 10*time.Second, "length of the direct-SQL limit run")
	flag.IntVar(&cfg.Buyers, "buyers", 100, "buyers registered (and logged in) through the gateway during setup")
	flag.IntVar(&cfg.Quantity, "quantity", 1_000_000, "tickets of the throughput type")
	flag.IntVar(&cfg.SoldOutQuantity, "soldout-quantity", 500, "tickets of the sell-out type (Q)")
	flag.IntVar(&cfg.SoldOutAttempts, "soldout-attempts", 0, "purchase attempts in the sell-out run (0: 5 × Q)")
	flag.DurationVar(&cfg.OverheadDuration, "overhead-duration", 12*time.Second, fmt.Sprintf("length of each side of the gateway-overhead comparison (run in %d alternating rounds)", overheadRounds))
	flag.DurationVar(&cfg.NotifyTimeout, "notify-timeout", 20*time.Second, "how long to wait, after the runs, for every purchase's notification")
	flag.BoolVar(&cfg.Fsync, "fsync", true, "run PostgreSQL with fsync on (durable commits)")
	flag.BoolVar(&cfg.PProf, "pprof", false, "build with net/http/pprof and save CPU profiles of the peak and half-rate runs under .bench/pprof/{peak,half}")
	flag.IntVar(&cfg.GoMaxProcs, "gomaxprocs", 0, "GOMAXPROCS of every service process (0: Go's default, one per CPU); see README, Performance")
	flag.Var(cfg.Env, "env", "KEY=VALUE added to every service's environment (repeatable)")
	flag.StringVar(&cfg.Out, "out", "", "output directory (default .bench in the repository)")
	flag.StringVar(&cfg.Overlay, "overlay", "", "go build -overlay file for the sbor binary (for trying a change without editing the tree)")
	flag.StringVar(&cfg.Src, "src", "", "build the sbor binary from this source tree instead (say, an export of an older commit, for before/after figures)")
	flag.Parse()
	if cfg.SoldOutAttempts == 0 {
		cfg.SoldOutAttempts = 5 * cfg.SoldOutQuantity
	}
	// Go's default (one P per CPU) is what the figures in the README were measured with.
	// GOMAXPROCS=1 shortened the ticket service's GC pauses on the shared cores but capped a
	// service at one core, which flatters the gateway-overhead comparison (the direct side
	// was no longer CPU-bound): kept as an experiment, not as the default.
	if _, set := cfg.Env["GOMAXPROCS"]; !set && cfg.GoMaxProcs > 0 {
		cfg.Env["GOMAXPROCS"] = strconv.Itoa(cfg.GoMaxProcs)
	}
	if cfg.Clients < 1 || cfg.Buyers < 1 || cfg.Quantity < 1 || cfg.SoldOutQuantity < 1 || cfg.Duration < time.Second || cfg.LimitDuration < time.Second {
		fmt.Fprintln(os.Stderr, "bench: -clients, -buyers and the quantities must be positive, -duration and -limit-duration at least 1s")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// result is everything a run measured; it is written as JSON.
type result struct {
	StartedAt   time.Time         `json:"started_at"`
	Seconds     float64           `json:"seconds"`
	Machine     machine           `json:"machine"`
	Postgres    map[string]string `json:"postgres"`
	Config      config            `json:"config"`
	Runs        []stats           `json:"runs"`
	Limit       stats             `json:"limit"`
	Ratio       float64           `json:"ratio"`
	Gateway     stats             `json:"gateway_get"`
	Direct      stats             `json:"direct_get"`
	OverheadPct float64           `json:"gateway_overhead_pct"`
	// Relay is the GET through a bare TCP relay (relay.go): the floor of OverheadPct.
	Relay            stats                `json:"relay_get"`
	RelayOverheadPct float64              `json:"relay_overhead_pct"`
	Checks           []typeCheck          `json:"checks"`
	Notifications    []delays             `json:"notifications"`
	Breakdowns       []breakdown          `json:"breakdowns"`
	RelayLag         relayLag             `json:"outbox_relay_lag"`
	Memory           map[string]memoryUse `json:"memory"`
	Failures         []string             `json:"failures"`
	Summary          string               `json:"summary"`
}

type memoryUse struct {
	IdleMiB float64 `json:"idle_rss_mib"`
	PeakMiB float64 `json:"peak_rss_mib"`
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, cfg config) (int, error) {
	repo, err := repoRoot()
	if err != nil {
		return 2, err
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join(repo, ".bench")
	}
	res := result{StartedAt: time.Now().UTC(), Config: cfg, Memory: map[string]memoryUse{}}
	res.Machine = describeMachine()
	logf("machine: %d CPUs (%s), load average %.2f at start", res.Machine.NProc, res.Machine.CPU, res.Machine.LoadStart[0])

	src := repo
	if cfg.Src != "" {
		if src, err = filepath.Abs(cfg.Src); err != nil {
			return 2, err
		}
	}
	p, err := startPlatform(ctx, platformOptions{repo: repo, src: src, logDir: filepath.Join(cfg.Out, "logs"), fsync: cfg.Fsync,
		pprof: cfg.PProf, overlay: cfg.Overlay, env: cfg.Env, logf: logf})
	defer func() {
		if err := p.stop(); err != nil {
			logf("stopping the platform: %v", err)
		}
	}()
	if err != nil {
		return 2, err
	}
	if res.Postgres, err = p.postgresSettings(ctx); err != nil {
		return 2, err
	}
	gw := p.url["gateway"]
	c := newClient(cfg.Clients)
	// Idle memory: started and ready, before any request.
	time.Sleep(time.Second)
	for _, name := range serviceNames {
		m, err := p.memory(name)
		if err != nil {
			return 2, err
		}
		res.Memory[name] = memoryUse{IdleMiB: round(m.RSSMiB, 1)}
	}

	// Setup, not timed.
	logf("setup: organizer, event, two ticket types, %d buyers", cfg.Buyers)
	org, err := c.organizer(ctx, gw)
	if err != nil {
		return 2, err
	}
	eventID, err := c.publishedEvent(ctx, gw, org, "Flash sale")
	if err != nil {
		return 2, err
	}
	bigType, err := c.ticketType(ctx, gw, org, eventID, "standard", cfg.Quantity)
	if err != nil {
		return 2, err
	}
	smallType, err := c.ticketType(ctx, gw, org, eventID, "vip", cfg.SoldOutQuantity)
	if err != nil {
		return 2, err
	}
	setupStart := time.Now()
	buyers, err := c.buyers(ctx, gw, cfg.Buyers)
	if err != nil {
		return 2, err
	}
	logf("setup: %d buyers registered in %.1fs", len(buyers), time.Since(setupStart).Seconds())

	bought := newPurchaseLog()
	buy := func(run, typeID string) request { return purchase(c, gw, eventID, typeID, buyers, bought, run) }

	// Write back everything dirty in the page cache before the timed runs: the sbor binary
	// just built (~90 MB), the bench's own binary under go run, PostgreSQL's CREATE DATABASE,
	// migrations and the setup's writes, whatever else ran on the machine. Left alone, the
	// kernel writes them back once they are 30 s old (vm.dirty_expire_centisecs) in one burst
	// per 5 s flusher wake-up, which lands in the half-rate run: every WAL fdatasync then
	// waits behind 100-250 MB of write-back, and commits stall 100-600 ms.
	synced := time.Now()
	syscall.Sync()
	logf("disk: page cache written back in %.1fs", time.Since(synced).Seconds())

	logf("warm-up: 2s")
	closedLoop(ctx, "warm-up", cfg.Clients, 2*time.Second, 0, buy("warm-up", bigType))

	logf("peak: %d clients for %s", cfg.Clients, cfg.Duration)
	var profiles chan error
	if cfg.PProf {
		profiles = p.profile(ctx, filepath.Join(cfg.Out, "pprof", "peak"), cfg.Duration-time.Second)
	}
	before := p.snapshot(ctx)
	probe, err := startCommitProbe(ctx, p.dbURL["limit"])
	if err != nil {
		return 2, err
	}
	peak := closedLoop(ctx, "peak", cfg.Clients, cfg.Duration, 0, buy("peak", bigType))
	bd := diff("peak", before, p.snapshot(ctx), peak.Requests)
	bd.CommitP50Ms, bd.CommitP99Ms = probe.finish()
	res.Breakdowns = append(res.Breakdowns, bd)
	if profiles != nil {
		if err := <-profiles; err != nil {
			logf("pprof: %v", err)
		}
	}
	res.Runs = append(res.Runs, peak)
	// The notification delay of each run is measured before the next starts, so a backlog
	// the peak run left does not count against the half-rate run.
	notify := func(run string) error {
		logf("%s: waiting for its notifications (at most %s)", run, cfg.NotifyTimeout)
		d, err := notificationDelays(ctx, p.dbURL["notification"], bought.snapshot(), run, cfg.NotifyTimeout)
		res.Notifications = append(res.Notifications, d)
		return err
	}
	if err := notify("peak"); err != nil {
		return 2, err
	}
	logf("peak: %.0f purchases/s, p99 %.1f ms", peak.PerSecond, peak.P99Ms)

	half := max(peak.PerSecond/2, 1)
	halfDuration := max(cfg.Duration/2, 5*time.Second)
	logf("half rate: %.0f purchases/s for %s", half, halfDuration)
	if cfg.PProf {
		profiles = p.profile(ctx, filepath.Join(cfg.Out, "pprof", "half"), halfDuration-time.Second)
	}
	before = p.snapshot(ctx)
	if probe, err = startCommitProbe(ctx, p.dbURL["limit"]); err != nil {
		return 2, err
	}
	paced := openLoop(ctx, "half rate", half, halfDuration, cfg.Clients, buy("half rate", bigType))
	if profiles != nil {
		if err := <-profiles; err != nil {
			logf("pprof: %v", err)
		}
	}
	bd = diff("half rate", before, p.snapshot(ctx), paced.Requests)
	bd.CommitP50Ms, bd.CommitP99Ms = probe.finish()
	res.Breakdowns = append(res.Breakdowns, bd)
	res.Runs = append(res.Runs, paced)
	if err := notify("half rate"); err != nil {
		return 2, err
	}
	logf("half rate: p99 %.1f ms", paced.P99Ms)

	logf("sell-out: %d attempts at %d tickets", cfg.SoldOutAttempts, cfg.SoldOutQuantity)
	soldOut := closedLoop(ctx, "sell-out", cfg.Clients, 5*time.Minute, int64(cfg.SoldOutAttempts), buy("sell-out", smallType))
	res.Runs = append(res.Runs, soldOut)
	if err := notify("sell-out"); err != nil {
		return 2, err
	}

	logf("limit: direct SQL, %d clients for %s", cfg.Clients, cfg.LimitDuration)
	if res.Limit, err = runLimit(ctx, p.dbURL["limit"], cfg.Clients, cfg.LimitDuration); err != nil {
		return 2, err
	}
	if res.Limit.PerSecond > 0 {
		res.Ratio = round(peak.PerSecond/res.Limit.PerSecond, 2)
	}
	logf("limit: %.0f tickets/s; ratio %.2f", res.Limit.PerSecond, res.Ratio)

	took, err := settleDatabases(ctx, []string{p.dbURL["ticket"], p.dbURL["notification"], p.dbURL["limit"]}, 20*time.Second)
	if err != nil {
		return 2, err
	}
	logf("databases vacuumed and autovacuum idle after %s", took.Round(100*time.Millisecond))
	relayURL, relayPID, err := startRelay(ctx, strings.TrimPrefix(p.url["ticket"], "http://"))
	if err != nil {
		return 2, err
	}
	p.relayPID = relayPID
	logf("gateway overhead: GET /api/tickets straight to the service, through the gateway and through a bare TCP relay, %s each", cfg.OverheadDuration)
	names := []string{"GET direct", "GET via gateway", "GET via a bare TCP relay"}
	sides := make([]cpuAccount, len(names))
	got := alternating(ctx, names, cfg.Clients, cfg.OverheadDuration, overheadRounds,
		[]request{listTickets(c, p.url["ticket"], buyers, true), listTickets(c, gw, buyers, false), listTickets(c, relayURL, buyers, true)},
		func(i int) func() {
			before := p.snapshot(ctx)
			return func() { sides[i].add(before, p.snapshot(ctx)) }
		})
	res.Direct, res.Gateway, res.Relay = got[0], got[1], got[2]
	for i, s := range got {
		res.Breakdowns = append(res.Breakdowns, sides[i].breakdown(names[i], s.Requests))
	}
	res.OverheadPct, res.RelayOverheadPct = lostPct(res.Gateway, res.Direct), lostPct(res.Relay, res.Direct)

	logf("checks: counters, database rows, Kafka messages, notifications")
	tickets := bought.snapshot()
	issued := bought.countByType()
	counters, err := c.ticketTypes(ctx, gw, eventID)
	if err != nil {
		return 2, err
	}
	distinct, redelivered, err := countMessages(ctx, p.brokers, p.prefix+cloudevent.TypeTicketPurchased, issued, 20*time.Second, 2*time.Minute)
	if err != nil {
		return 2, err
	}
	for _, tc := range []struct{ name, id string }{{"throughput", bigType}, {"sell-out", smallType}} {
		ch := typeCheck{Name: tc.name, TypeID: tc.id, Quantity: counters[tc.id].Quantity, Issued: issued[tc.id],
			Duplicates: bought.duplicatesOf(tc.id), Sold: counters[tc.id].Sold, Messages: distinct[tc.id], Redelivered: redelivered[tc.id]}
		if ch.Rows, err = ticketRows(ctx, p.dbURL["ticket"], tc.id); err != nil {
			return 2, err
		}
		ch.evaluate()
		if tc.id == smallType && ch.Issued != ch.Quantity && cfg.SoldOutAttempts >= ch.Quantity {
			ch.OK = false // every ticket must sell when demand exceeds supply
		}
		if !ch.OK {
			res.Failures = append(res.Failures, fmt.Sprintf("%s type: issued %d, sold %d, rows %d, messages %d, quantity %d, oversold %d, duplicate ids %d",
				tc.name, ch.Issued, ch.Sold, ch.Rows, ch.Messages, ch.Quantity, ch.Oversold, ch.Duplicates))
		}
		res.Checks = append(res.Checks, ch)
	}
	if res.RelayLag, err = outboxLag(ctx, p.dbURL["ticket"]); err != nil {
		return 2, err
	}
	for _, d := range res.Notifications {
		if d.Missing > 0 {
			logf("%s run: %d of %d tickets had no notification yet after waiting %s: their delay counts as at least that wait", d.Run, d.Missing, d.Tickets, cfg.NotifyTimeout)
		}
	}
	if missing := res.Notifications[0].Missing + res.Notifications[1].Missing + res.Notifications[2].Missing; missing == 0 {
		if err := checkNotificationsThroughAPI(ctx, c, gw, buyers, tickets, 5); err != nil {
			res.Failures = append(res.Failures, err.Error())
		}
	}
	for _, name := range serviceNames {
		m, err := p.memory(name)
		if err != nil {
			return 2, err
		}
		u := res.Memory[name]
		u.PeakMiB = round(m.PeakMiB, 1)
		res.Memory[name] = u
	}
	if gone := p.exited(); len(gone) > 0 {
		res.Failures = append(res.Failures, "exited during the run: "+strings.Join(gone, ", "))
	}
	for _, s := range append(append([]stats{}, res.Runs...), res.Gateway, res.Direct, res.Relay) {
		for label, n := range s.Outcomes {
			if strings.HasPrefix(label, "5") || label == "transport error" {
				res.Failures = append(res.Failures, fmt.Sprintf("%s run: %d × %s", s.Name, n, label))
			}
		}
	}

	res.Machine.LoadEnd = loadAverage()
	res.Seconds = round(time.Since(res.StartedAt).Seconds(), 1)
	oversold := 0
	for _, ch := range res.Checks {
		oversold += ch.Oversold
	}
	notifyP99 := res.Notifications[0].P99Ms // the peak run's
	res.Summary = fmt.Sprintf("bench: e2e_per_s=%.0f limit_per_s=%.0f ratio=%.2f p99_ms=%.0f oversold=%d notify_p99_ms=%.0f",
		peak.PerSecond, res.Limit.PerSecond, res.Ratio, paced.P99Ms, oversold, notifyP99)
	if err := writeReport(cfg.Out, res); err != nil {
		return 2, err
	}
	for _, f := range res.Failures {
		logf("FAILED: %s", f)
	}
	fmt.Println(res.Summary)
	if len(res.Failures) > 0 {
		return 1, nil
	}
	return 0, nil
}

// purchase is one purchase request through the gateway by the next buyer in turn.
func purchase(c *client, gateway, eventID, typeID string, buyers []user, log *purchaseLog, run string) request {
	body := []byte(`{"ticket_type_id":"` + typeID + `"}`)
	url := gateway + "/api/events/" + eventID + "/tickets"
	headers := make([]http.Header, len(buyers))
	for i, b := range buyers {
		headers[i] = http.Header{"Authorization": {"Bearer " + b.Token}}
	}
	return func(ctx context.Context, _ int, seq int64) outcome {
		i := int(seq % int64(len(buyers)))
		a, err := c.do(ctx, "POST", url, body, headers[i])
		if err != nil {
			return outcome{}
		}
		if a.status != http.StatusCreated {
			return outcome{status: a.status, code: a.code()}
		}
		var t struct {
			ID           string    `json:"id"`
			TicketTypeID string    `json:"ticket_type_id"`
			PurchasedAt  time.Time `json:"purchased_at"`
		}
		if err := json.Unmarshal(a.body, &t); err != nil || t.TicketTypeID != typeID {
			return outcome{status: a.status, code: "unreadable_ticket"}
		}
		log.add(t.ID, boughtTicket{Run: run, TypeID: typeID, UserIndex: i, PurchasedAt: t.PurchasedAt})
		return outcome{ok: true, status: a.status}
	}
}

// lostPct is the share of direct's throughput that via lost (0 when direct has none).
func lostPct(via, direct stats) float64 {
	if direct.PerSecond == 0 {
		return 0
	}
	return round(100*(1-via.PerSecond/direct.PerSecond), 1)
}

// overheadRounds is how many rounds each side of the gateway-overhead comparison runs: the
// machine's speed drifted by up to a third over one comparison (each round's rate is in the
// report), and short rounds in a b c c b a order average that out. Sixteen rounds of 0.75 s
// (the default -overhead-duration), not eight: the gateway's figure still spreads as much
// from run to run (standard deviation 3.2 points over 26 runs with eight and 20 with sixteen,
// 2026-11-28: the machine moves at the scale of seconds), but its distance from the bare
// relay's in the same run spreads less (3.8 → 2.6 points), and that is the figure to read
// it against.
const overheadRounds = 16

// listTickets is GET /api/tickets?limit=1 for the next buyer: through the gateway with the
// buyer's token, or, direct, straight to the ticket service with the identity headers the
// gateway would set.
func listTickets(c *client, base string, buyers []user, direct bool) request {
	headers := make([]http.Header, len(buyers))
	for i, b := range buyers {
		h := http.Header{}
		if direct {
			identity.SetHeaders(h, identity.Identity{UserID: uuid.MustParse(b.ID), Role: identity.RoleUser})
		} else {
			h.Set("Authorization", "Bearer "+b.Token)
		}
		headers[i] = h
	}
	url := base + "/api/tickets?limit=1"
	return func(ctx context.Context, _ int, seq int64) outcome {
		a, err := c.do(ctx, "GET", url, nil, headers[seq%int64(len(buyers))])
		if err != nil {
			return outcome{}
		}
		if a.status != http.StatusOK {
			return outcome{status: a.status, code: a.code()}
		}
		return outcome{ok: true, status: a.status}
	}
}

// profile saves 'seconds' of CPU profile of every service into dir, in the background.
func (p *platform) profile(ctx context.Context, dir string, d time.Duration) chan error {
	errc := make(chan error, 1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		errc <- err
		return errc
	}
	// The bench's own clients share the machine: profile them too, for the same window.
	own, err := os.Create(filepath.Join(dir, "bench.cpu.pprof"))
	if err != nil {
		errc <- err
		return errc
	}
	if err := pprof.StartCPUProfile(own); err != nil {
		own.Close()
		errc <- err
		return errc
	}
	go func() {
		var errs []error
		time.AfterFunc(d, func() { pprof.StopCPUProfile(); own.Close() })
		done := make(chan error, len(p.pprof))
		for name, addr := range p.pprof {
			go func() {
				url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds()))
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- err
					return
				}
				defer resp.Body.Close()
				f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
				if err != nil {
					done <- err
					return
				}
				_, err = io.Copy(f, resp.Body)
				done <- errors.Join(err, f.Close())
			}()
		}
		for range p.pprof {
			errs = append(errs, <-done)
		}
		errc <- errors.Join(errs...)
	}()
	return errc
}

// machine describes where the bench ran.
type machine struct {
	NProc     int        `json:"nproc"`
	CPU       string     `json:"cpu"`
	GoVersion string     `json:"go"`
	LoadStart [3]float64 `json:"load_start"`
	LoadEnd   [3]float64 `json:"load_end"`
}

func describeMachine() machine {
	m := machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func loadAverage() [3]float64 {
	var l [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		_, _ = fmt.Sscanf(string(b), "%f %f %f", &l[0], &l[1], &l[2])
	}
	return l
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}
