package kafkaserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sbor-dev/sbor/internal/freeport"
)

// Options configures Start.
type Options struct {
	// Dir holds everything of this broker: server.properties,
	// log4j2.properties, the data (Dir/data) and the broker's output
	// (Dir/broker.log). Required; created if missing. Restart reuses it.
	Dir string

	// RepoRoot is the directory holding hack/kafka/fetch.sh. Empty means:
	// walk up from the working directory to the first go.mod that has
	// hack/kafka/fetch.sh beside it.
	RepoRoot string

	// LibsDir, when set, is a directory of the broker's jars to use as they
	// are; fetch.sh is not run.
	LibsDir string

	// Java is the java binary. Empty means $JAVA_HOME/bin/java when
	// JAVA_HOME is set, else java on PATH. Kafka 4 brokers need Java 17+.
	Java string

	// StartTimeout bounds one start, from launching the JVM to the broker
	// answering a metadata request (fetching the jars is bounded only by
	// ctx). Zero means 2 minutes.
	StartTimeout time.Duration

	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	// Zero means 20 seconds. The one run that dumps the CDS archive (see
	// the package documentation) gets at least 3 minutes.
	StopTimeout time.Duration

	// JVMArgs are added after the default JVM options (a later -Xmx wins).
	JVMArgs []string

	// Config entries are added to server.properties, overriding the
	// defaults. The listeners, node id, quorum and log.dirs are the
	// package's to set and cannot be overridden.
	Config map[string]string
}

// Timings tells where a Server's start-up time went.
type Timings struct {
	// Fetch is the time hack/kafka/fetch.sh took (near zero once cached).
	Fetch time.Duration
	// Format is the time spent formatting the storage (near zero once the
	// template is cached; zero on a restart).
	Format time.Duration
	// Start is the time of the latest (re)start: from launching the JVM to
	// the broker answering a metadata request.
	Start time.Duration
	// CDS tells whether the latest start mapped a class-data-sharing archive.
	CDS bool
}

// Server is one running (or stopped) single-node KRaft broker+controller.
// Its methods are safe for concurrent use.
type Server struct {
	opts      Options
	dir       string
	dataDir   string
	logPath   string
	java      string
	libs      string
	classpath string
	cacheDir  string // where the storage template and CDS archives live; "" if none

	brokerPort     int
	controllerPort int

	mu      sync.Mutex
	proc    *process
	timings Timings
}

const nodeID = 1

// warmupGroup is the consumer group Start asks about so that the group
// coordinator is up before the first test needs it. It never has members.
const warmupGroup = "sbor-kafkaserver-warmup"

// Start fetches the broker (if not cached), formats its storage in opts.Dir
// and starts it, returning once it answers a metadata request. ctx bounds the
// whole call; the broker itself lives until Stop or Kill (or until this
// process dies).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("kafkaserver: Options.Dir is required")
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 20 * time.Second
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("kafkaserver: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kafkaserver: %w", err)
	}
	s := &Server{
		opts:    opts,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "broker.log"),
	}

	if s.java, err = findJava(opts.Java); err != nil {
		return nil, err
	}

	t0 := time.Now()
	if s.libs, err = fetch(ctx, opts); err != nil {
		return nil, err
	}
	s.timings.Fetch = time.Since(t0)
	if s.classpath, err = classpath(s.libs); err != nil {
		return nil, err
	}
	s.cacheDir = filepath.Dir(s.libs)

	if err := os.WriteFile(filepath.Join(dir, "log4j2.properties"), []byte(log4jConfig), 0o644); err != nil {
		return nil, fmt.Errorf("kafkaserver: %w", err)
	}

	t0 = time.Now()
	if err := s.formatStorage(ctx); err != nil {
		return nil, err
	}
	s.timings.Format = time.Since(t0)

	s.mu.Lock()
	defer s.mu.Unlock()
	// Free ports are picked, released and then bound by the JVM: another
	// process can take one in between. Retry with fresh ports if so.
	for attempt := 1; ; attempt++ {
		if s.brokerPort, s.controllerPort, err = freePorts(); err != nil {
			return nil, fmt.Errorf("kafkaserver: picking ports: %w", err)
		}
		err = s.launchLocked(ctx)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			return nil, err
		}
	}
}

// Brokers returns the bootstrap address, "127.0.0.1:port". It stays the same
// across Restart.
func (s *Server) Brokers() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.brokerPort))
}

// Dir returns the absolute Options.Dir.
func (s *Server) Dir() string { return s.dir }

// LogPath returns the file that receives the broker's output.
func (s *Server) LogPath() string { return s.logPath }

// LibsDir returns the directory of the broker's jars.
func (s *Server) LibsDir() string { return s.libs }

// Timings returns where the start-up time went.
func (s *Server) Timings() Timings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timings
}

// PID returns the broker's process id, or 0 while it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.cmd.Process == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Running reports whether the broker process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.done:
		return false
	default:
		return true
	}
}

// Stop shuts the broker down: SIGTERM (Kafka's controlled shutdown), then
// SIGKILL if it has not exited within Options.StopTimeout. It returns once
// the process is gone. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(false)
}

// Kill kills the broker with SIGKILL, as a crash would, and returns once the
// process is gone. Data not yet flushed by the OS survives (the page cache
// is not lost); what Kafka had not written is.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(true)
}

// Restart starts the broker again on the same ports and data directory,
// stopping it first (gracefully) if it is still running, and returns once it
// answers a metadata request.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(false); err != nil {
		return err
	}
	return s.launchLocked(ctx)
}

// process is one run of the JVM.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited
	waitErr error         // valid after done is closed

	cdsTmp, cdsFinal string // archive being dumped at exit, if any
}

var errPortTaken = errors.New("kafkaserver: port already in use")

// ErrUnavailable is wrapped by the errors Start returns when this machine
// cannot run the broker at all: no Java runtime, or the jars could not be
// fetched (no Maven, no registry). Any other error is a real failure.
var ErrUnavailable = errors.New("no usable Apache Kafka broker")

func (s *Server) launchLocked(ctx context.Context) error {
	if err := os.WriteFile(filepath.Join(s.dir, "server.properties"), []byte(s.serverProperties()), 0o644); err != nil {
		return fmt.Errorf("kafkaserver: %w", err)
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kafkaserver: %w", err)
	}
	logStart, _ := logFile.Seek(0, 2)
	fmt.Fprintf(logFile, "==== kafkaserver: starting broker %s at %s\n", s.Brokers(), time.Now().Format(time.RFC3339Nano))

	p := &process{done: make(chan struct{})}
	cdsArgs, cdsTmp, cdsFinal := s.cdsArgs()
	p.cdsTmp, p.cdsFinal = cdsTmp, cdsFinal

	args := append(s.jvmArgs(), cdsArgs...)
	args = append(args, s.opts.JVMArgs...)
	args = append(args, "-cp", s.classpath, "kafka.Kafka", filepath.Join(s.dir, "server.properties"))
	cmd := exec.Command(s.java, args...)
	cmd.Dir = s.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd = cmd

	t0 := time.Now()
	err = startLocked(cmd)
	logFile.Close() // the child has its own descriptor
	if err != nil {
		p.removeCDSTmp()
		return fmt.Errorf("kafkaserver: starting %s: %w", s.java, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	s.proc = p

	readyCtx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	if err := s.waitReady(readyCtx, p); err != nil {
		_ = s.stopLocked(true)
		tail := logTail(s.logPath, logStart)
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("%w: %v", errPortTaken, err)
		}
		if strings.Contains(tail, "UnsupportedClassVersionError") {
			return fmt.Errorf("kafkaserver: %w: %s is older than Java 17, which Kafka 4 brokers need", ErrUnavailable, s.java)
		}
		return fmt.Errorf("kafkaserver: broker %s did not start: %w\n--- %s (tail) ---\n%s", s.Brokers(), err, s.logPath, tail)
	}
	s.timings.Start = time.Since(t0)
	s.timings.CDS = cdsFinal != "" && cdsTmp == ""
	return nil
}

// waitReady polls until the broker answers a metadata request that lists
// itself and a controller, the process exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	var cl *kgo.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("java exited early (%v)", p.waitErr)
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("%w (last check: %v)", ctx.Err(), lastErr)
			}
			return ctx.Err()
		case <-tick.C:
		}
		// A cheap dial first: the broker accepts connections only once it
		// is started, and until then the admin client would just retry.
		c, err := net.DialTimeout("tcp", s.Brokers(), 200*time.Millisecond)
		if err != nil {
			lastErr = err
			continue
		}
		c.Close()
		if cl == nil {
			cl, err = kgo.NewClient(kgo.SeedBrokers(s.Brokers()), kgo.DialTimeout(time.Second))
			if err != nil {
				return err
			}
		}
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		md, err := kadm.NewClient(cl).BrokerMetadata(mctx)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if len(md.Brokers) == 0 || md.Controller < 0 {
			lastErr = fmt.Errorf("metadata lists %d brokers, controller %d", len(md.Brokers), md.Controller)
			continue
		}
		break
	}
	// Warm the group coordinator up: the first FindCoordinator creates
	// __consumer_offsets, and a consumer that asks while it is being
	// created is told to retry; kafka-go then waits its JoinGroupBackoff
	// (5s by default). Do it here, once, instead of in the first test.
	adm := kadm.NewClient(cl)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("java exited early (%v)", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for the group coordinator: %v)", ctx.Err(), lastErr)
		default:
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := adm.FindGroupCoordinators(fctx, warmupGroup).Error()
		if err == nil {
			// The coordinator is known; wait until it has loaded too.
			var groups kadm.DescribedGroups
			if groups, err = adm.DescribeGroups(fctx, warmupGroup); err == nil {
				err = groups.Error()
			}
			if errors.Is(err, kerr.GroupIDNotFound) {
				err = nil // answered by a loaded coordinator: an empty group
			}
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stopLocked(kill bool) error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	pid := p.cmd.Process.Pid
	graceful := false
	if !kill {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		timeout := s.opts.StopTimeout
		if p.dumpingCDS() && timeout < cdsDumpStopTimeout {
			timeout = cdsDumpStopTimeout
		}
		select {
		case <-p.done:
			graceful = true
		case <-time.After(timeout):
		}
	}
	if !graceful {
		// The whole process group: the JVM starts no children, but be sure.
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			_ = p.cmd.Process.Kill()
		}
		<-p.done
	}
	if graceful {
		p.keepCDS()
	} else {
		p.removeCDSTmp()
	}
	return nil
}

func (s *Server) jvmArgs() []string {
	return []string{
		// Small and quick to start: tests need a broker in seconds, not
		// peak throughput, on a 2-core machine running other things too.
		"-Xms128m", "-Xmx512m",
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-XX:-UsePerfData",
		"-XX:+ExitOnOutOfMemoryError",
		"-Xshare:auto",
		// CDS prints warnings about classes it cannot archive; they are
		// harmless and would drown the broker's log.
		"-Xlog:cds=off,cds+dynamic=off",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(s.dir, "log4j2.properties"),
	}
}

// serverProperties is the broker's configuration: a combined KRaft node with
// static voters, every replication factor 1, small internal topics, few
// threads.
func (s *Server) serverProperties() string {
	b, c := strconv.Itoa(s.brokerPort), strconv.Itoa(s.controllerPort)
	fixed := [][2]string{
		{"process.roles", "broker,controller"},
		{"node.id", strconv.Itoa(nodeID)},
		{"controller.quorum.voters", fmt.Sprintf("%d@127.0.0.1:%s", nodeID, c)},
		{"listeners", "PLAINTEXT://127.0.0.1:" + b + ",CONTROLLER://127.0.0.1:" + c},
		{"advertised.listeners", "PLAINTEXT://127.0.0.1:" + b},
		{"controller.listener.names", "CONTROLLER"},
		{"inter.broker.listener.name", "PLAINTEXT"},
		{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
		{"log.dirs", s.dataDir},
	}
	defaults := map[string]string{
		"num.partitions":             "3",
		"default.replication.factor": "1",
		"min.insync.replicas":        "1",
		"auto.create.topics.enable":  "true",
		"delete.topic.enable":        "true",

		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "5",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "3",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"share.coordinator.state.topic.num.partitions":     "3",
		"group.initial.rebalance.delay.ms":                 "0",

		// After Kill, the restarted controller refuses the broker's new
		// registration until the old session times out (9s by default).
		"broker.session.timeout.ms":    "4000",
		"broker.heartbeat.interval.ms": "500",

		// The cleaner allocates its dedupe buffer (128 MiB by default)
		// at start-up.
		"log.cleaner.dedupe.buffer.size": "4194304",
		"log.cleaner.threads":            "1",

		"num.network.threads":               "2",
		"num.io.threads":                    "4",
		"background.threads":                "2",
		"num.recovery.threads.per.data.dir": "1",
		"num.replica.fetchers":              "1",
		"group.coordinator.threads":         "1",
		"share.coordinator.threads":         "1",
	}
	for k, v := range s.opts.Config {
		defaults[k] = v
	}
	var sb strings.Builder
	sb.WriteString("# Written by internal/testkit/kafkaserver; rewritten on every start.\n")
	for _, kv := range fixed {
		delete(defaults, kv[0])
		fmt.Fprintf(&sb, "%s=%s\n", kv[0], kv[1])
	}
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\n", k, defaults[k])
	}
	return sb.String()
}

// log4jConfig sends the broker's log to stdout (the log file) at INFO, minus
// the configuration dumps and per-request chatter.
const log4jConfig = `# Written by internal/testkit/kafkaserver.
status = error
name = sbor-test-kafka
appender.out.type = Console
appender.out.name = out
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.network.name = kafka.network
logger.network.level = WARN
`

func findJava(java string) (string, error) {
	if java == "" {
		java = "java"
		if home := os.Getenv("JAVA_HOME"); home != "" {
			java = filepath.Join(home, "bin", "java")
		}
	}
	p, err := exec.LookPath(java)
	if err != nil {
		return "", fmt.Errorf("kafkaserver: %w: no Java runtime (%s): %v", ErrUnavailable, java, err)
	}
	return p, nil
}

// fetch returns the directory of the broker's jars, running fetch.sh unless
// opts.LibsDir is set.
func fetch(ctx context.Context, opts Options) (string, error) {
	if opts.LibsDir != "" {
		return filepath.Abs(opts.LibsDir)
	}
	root := opts.RepoRoot
	if root == "" {
		var err error
		if root, err = FindRepoRoot(); err != nil {
			return "", err
		}
	}
	script := filepath.Join(root, "hack", "kafka", "fetch.sh")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// On cancellation kill Maven too, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("kafkaserver: %s: %w", script, ctx.Err())
		}
		return "", fmt.Errorf("kafkaserver: %w: %s failed (%v):\n%s", ErrUnavailable, script, err, lastBytes(stderr.String(), 2000))
	}
	libs := strings.TrimSpace(stdout.String())
	if libs == "" || strings.Contains(libs, "\n") {
		return "", fmt.Errorf("kafkaserver: %s printed %q, want one directory", script, stdout.String())
	}
	return libs, nil
}

// FindRepoRoot walks up from the working directory to the first directory
// that has both go.mod and hack/kafka/fetch.sh.
func FindRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("kafkaserver: %w", err)
	}
	for d := wd; ; {
		if fileExists(filepath.Join(d, "go.mod")) && fileExists(filepath.Join(d, "hack", "kafka", "fetch.sh")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("kafkaserver: %w: no go.mod with hack/kafka/fetch.sh above %s", ErrUnavailable, wd)
		}
		d = parent
	}
}

// classpath lists the jars in libs, sorted, so that the class path (and so
// the CDS archive that depends on it) is the same on every run.
func classpath(libs string) (string, error) {
	jars, err := filepath.Glob(filepath.Join(libs, "*.jar"))
	if err != nil {
		return "", fmt.Errorf("kafkaserver: %w", err)
	}
	if len(jars) == 0 {
		return "", fmt.Errorf("kafkaserver: no jars in %s", libs)
	}
	sort.Strings(jars)
	return strings.Join(jars, string(os.PathListSeparator)), nil
}

// freePorts picks two distinct free loopback ports (see package freeport for why not port 0).
func freePorts() (broker, controller int, err error) {
	if broker, err = freeport.Pick(); err != nil {
		return 0, 0, err
	}
	if controller, err = freeport.Pick(); err != nil {
		return 0, 0, err
	}
	return broker, controller, nil
}

// logTail returns the last lines the broker wrote since offset.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if offset > 0 && offset <= int64(len(b)) {
		b = b[offset:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return lastBytes(strings.Join(lines, "\n"), 6000)
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
