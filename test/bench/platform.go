package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sbor-dev/sbor/internal/freeport"
	"github.com/sbor-dev/sbor/internal/pgserver"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit/kafkaserver"
)

// serviceNames are the targets the bench runs, each as its own process, in start order
// (services before the gateway, so its first key fetch finds the user service).
var serviceNames = []string{"user", "event", "ticket", "notification", "gateway"}

// platform is a running Sbor as a user deploys it: the sbor binary, one process per target,
// a PostgreSQL server of the bench's own with durable commits, and Apache Kafka.
type platform struct {
	repo    string
	work    string // temporary directory: binary, PostgreSQL data, Kafka data
	logDir  string // the processes' output, kept under .bench
	bin     string
	pg      *pgserver.Server
	kafka   *kafkaserver.Server // nil when KAFKA_BROKERS names a broker
	brokers []string
	prefix  string
	dbURL   map[string]string // per service, and "limit" for the direct-SQL run
	url     map[string]string // base URL per target
	procs   map[string]*proc
	env     map[string]string
	pprof   map[string]string // pprof listener per target, when built with -pprof
	metrics map[string]string // Prometheus listener per target
	// relayPID is the bare TCP relay's process (relay.go), once the GET comparison started it.
	relayPID int
}

// proc is one running target.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

type platformOptions struct {
	repo    string
	src     string // the source tree the binary is built from
	logDir  string
	fsync   bool
	pprof   bool
	overlay string            // a go build -overlay file
	env     map[string]string // added to (or overriding) every process's environment
	logf    func(format string, args ...any)
}

// startPlatform builds the binary and starts PostgreSQL, Kafka and every target; stop undoes
// it (also after a failed start).
func startPlatform(ctx context.Context, o platformOptions) (*platform, error) {
	work, err := os.MkdirTemp("", "sbor-bench-")
	if err != nil {
		return nil, err
	}
	p := &platform{repo: o.repo, work: work, logDir: o.logDir, dbURL: map[string]string{}, url: map[string]string{},
		procs: map[string]*proc{}, pprof: map[string]string{}, metrics: map[string]string{}, prefix: "bench" + randomHex(4) + "."}
	if err := os.MkdirAll(o.logDir, 0o755); err != nil {
		return p, err
	}

	o.logf("building the sbor binary")
	if err := p.build(ctx, o.src, o.overlay, o.pprof); err != nil {
		return p, err
	}

	o.logf("starting PostgreSQL (durable: fsync=%v, synchronous_commit=on)", o.fsync)
	p.pg, err = pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(work, "pg"), Fast: false})
	if err != nil {
		return p, err
	}
	if err := p.configurePostgres(ctx, o.fsync); err != nil {
		return p, err
	}
	for _, name := range []string{"user", "event", "ticket", "notification", "limit"} {
		db := "sbor_" + name
		if err := p.pg.CreateDatabase(ctx, db); err != nil {
			return p, err
		}
		p.dbURL[name] = p.pg.URL(db)
	}

	if brokers := kafkabus.SplitBrokers(os.Getenv("KAFKA_BROKERS")); len(brokers) > 0 {
		o.logf("using Apache Kafka at %s (KAFKA_BROKERS)", strings.Join(brokers, ","))
		p.brokers = brokers
	} else {
		o.logf("starting Apache Kafka")
		kctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		p.kafka, err = kafkaserver.Start(kctx, kafkaserver.Options{Dir: filepath.Join(work, "kafka"), RepoRoot: o.repo})
		cancel()
		if err != nil {
			return p, fmt.Errorf("kafka: %w", err)
		}
		p.brokers = []string{p.kafka.Brokers()}
	}

	keyFile := filepath.Join(work, "jwt.pem")
	key, err := exec.CommandContext(ctx, p.bin, "keygen").Output()
	if err != nil {
		return p, fmt.Errorf("sbor keygen: %w", err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return p, err
	}
	addrs := map[string]string{}
	for _, name := range serviceNames {
		if addrs[name], err = freeport.Addr(); err != nil {
			return p, err
		}
		p.url[name] = "http://" + addrs[name]
	}
	p.env = map[string]string{
		"SBOR_LOG_FORMAT":                "json",
		"SBOR_LOG_LEVEL":                 "info",
		"KAFKA_BROKERS":                  strings.Join(p.brokers, ","),
		"SBOR_KAFKA_TOPIC_PREFIX":        p.prefix,
		"SBOR_JWT_PRIVATE_KEY_FILE":      keyFile,
		"SBOR_USER_URL":                  p.url["user"],
		"SBOR_EVENT_URL":                 p.url["event"],
		"SBOR_TICKET_URL":                p.url["ticket"],
		"SBOR_NOTIFICATION_URL":          p.url["notification"],
		"SBOR_USER_DATABASE_URL":         p.dbURL["user"],
		"SBOR_EVENT_DATABASE_URL":        p.dbURL["event"],
		"SBOR_TICKET_DATABASE_URL":       p.dbURL["ticket"],
		"SBOR_NOTIFICATION_DATABASE_URL": p.dbURL["notification"],
		// Setup registers and logs in every buyer from one address.
		"SBOR_LOGIN_MAX_PER_IP": "1000000",
	}
	for k, v := range o.env {
		p.env[k] = v
	}
	o.logf("starting %s, each its own process", strings.Join(serviceNames, ", "))
	for _, name := range serviceNames {
		if err := p.start(name, addrs[name], o.pprof); err != nil {
			return p, err
		}
	}
	for _, name := range serviceNames {
		if err := p.waitReady(ctx, name); err != nil {
			return p, err
		}
	}
	return p, nil
}

// build compiles cmd/sbor from src. overlay, if set, is a go build -overlay file. With pprof,
// a file added through the overlay (never written into the source tree) serves
// net/http/pprof on SBOR_BENCH_PPROF_ADDR in every process.
func (p *platform) build(ctx context.Context, src, overlay string, pprof bool) error {
	p.bin = filepath.Join(p.work, "sbor")
	args := []string{"build", "-o", p.bin}
	replace := map[string]string{}
	if overlay != "" {
		var o struct{ Replace map[string]string }
		raw, err := os.ReadFile(overlay)
		if err == nil {
			err = json.Unmarshal(raw, &o)
		}
		if err != nil {
			return fmt.Errorf("overlay %s: %w", overlay, err)
		}
		replace = o.Replace
	}
	if pprof {
		pp := filepath.Join(p.work, "bench_pprof.go")
		if err := os.WriteFile(pp, []byte(pprofOverlay), 0o644); err != nil {
			return err
		}
		replace[filepath.Join(src, "internal", "app", "zz_bench_pprof.go")] = pp
	}
	if len(replace) > 0 {
		raw, _ := json.Marshal(map[string]map[string]string{"Replace": replace})
		file := filepath.Join(p.work, "overlay.json")
		if err := os.WriteFile(file, raw, 0o644); err != nil {
			return err
		}
		args = append(args, "-overlay", file)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/sbor")...)
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// pprofOverlay is compiled into package app only for a -pprof run.
const pprofOverlay = `package app

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("SBOR_BENCH_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// configurePostgres makes commits durable: pgserver's non-Fast mode leaves fsync off (a
// development setting), which would flatter every figure. ALTER SYSTEM writes
// postgresql.auto.conf, which wins over the postgresql.conf pgserver writes.
func (p *platform) configurePostgres(ctx context.Context, fsync bool) error {
	conn, err := pgx.Connect(ctx, p.pg.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	settings := map[string]string{"fsync": "off", "synchronous_commit": "on", "full_page_writes": "on"}
	if fsync {
		settings["fsync"] = "on"
	}
	for k, v := range settings {
		if _, err := conn.Exec(ctx, "ALTER SYSTEM SET "+k+" = '"+v+"'"); err != nil {
			return fmt.Errorf("ALTER SYSTEM SET %s: %w", k, err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	// The reload is asynchronous: wait until this backend sees it.
	want := map[bool]string{true: "on", false: "off"}[fsync]
	for range 100 {
		var got string
		if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&got); err != nil {
			return err
		}
		if got == want {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("postgres did not take fsync = %s", want)
}

// postgresSettings reads the durability settings in force, for the report.
func (p *platform) postgresSettings(ctx context.Context) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, p.pg.URL("postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	out := map[string]string{}
	for _, k := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers"} {
		var v string
		if err := conn.QueryRow(ctx, "SHOW "+k).Scan(&v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func (p *platform) start(name, addr string, pprof bool) error {
	env := os.Environ()
	for k, v := range p.env {
		env = append(env, k+"="+v)
	}
	metrics, err := freeport.Addr()
	if err != nil {
		return err
	}
	p.metrics[name] = metrics
	env = append(env, "SBOR_HTTP_ADDR="+addr, "SBOR_METRICS_ADDR="+metrics)
	if pprof {
		pp, err := freeport.Addr()
		if err != nil {
			return err
		}
		p.pprof[name] = pp
		env = append(env, "SBOR_BENCH_PPROF_ADDR="+pp)
	}
	logFile, err := os.Create(filepath.Join(p.logDir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, name)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The processes die with the bench, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	pr := &proc{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(pr.done) }()
	p.procs[name] = pr
	return nil
}

func (p *platform) waitReady(ctx context.Context, name string) error {
	pr := p.procs[name]
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", p.url[name]+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-pr.done:
			return fmt.Errorf("%s exited before it was ready; see %s", name, pr.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after 90s; see %s", name, pr.log.Name())
}

// memory is a process's resident set from /proc/PID/status.
type memory struct {
	RSSMiB  float64 `json:"rss_mib"`
	PeakMiB float64 `json:"peak_rss_mib"`
}

func (p *platform) memory(name string) (memory, error) {
	pr := p.procs[name]
	f, err := os.Open("/proc/" + strconv.Itoa(pr.cmd.Process.Pid) + "/status")
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kib, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			m.RSSMiB = kib / 1024
		case "VmHWM:":
			m.PeakMiB = kib / 1024
		}
	}
	return m, sc.Err()
}

// exited names the targets that are no longer running.
func (p *platform) exited() []string {
	var out []string
	for _, name := range serviceNames {
		if pr := p.procs[name]; pr != nil {
			select {
			case <-pr.done:
				out = append(out, name)
			default:
			}
		}
	}
	return out
}

// stop ends every process (SIGTERM, then SIGKILL after 20 s), Kafka and PostgreSQL, and
// removes the temporary directory.
func (p *platform) stop() error {
	var errs []error
	for i := len(serviceNames) - 1; i >= 0; i-- {
		pr := p.procs[serviceNames[i]]
		if pr == nil {
			continue
		}
		_ = pr.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(20 * time.Second):
			_ = pr.cmd.Process.Kill()
			<-pr.done
			errs = append(errs, fmt.Errorf("%s did not stop within 20s of SIGTERM", pr.name))
		}
		pr.log.Close()
	}
	if p.kafka != nil {
		if err := p.kafka.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.pg != nil {
		if err := p.pg.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(p.work); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
