// Package pgserver runs a PostgreSQL server from the machine's own PostgreSQL server
// binaries, with no Docker and no cluster: initdb into a folder, write a configuration
// tuned for a development or test box, run postgres as a child process and wait until it
// accepts connections.
//
// Why it exists: Sbor's local development (make dev) and its tests use a real PostgreSQL,
// never a mock or an embedded imitation (design sections 2 and 7). Debian-style installs put
// the server programs under /usr/lib/postgresql/NN/bin, off PATH, and a server started by
// hand with pg_ctl is easily left behind; this package finds the binaries, owns the server
// process (postgres -D dir, not pg_ctl, so it can signal and wait for it), and ties a
// throwaway server's life to the process that started it.
//
// Two ways to use it:
//
//   - Throwaway (tests): Start(ctx, Options{Dir: tmp, Fast: true}). The postmaster gets
//     Pdeathsig=SIGQUIT, so it dies with the starting process even on a crash or SIGKILL.
//   - Long-lived (make dev): Start(ctx, Options{Dir: ".dev/postgres", Reuse: true}). A
//     postmaster left running by an earlier run in the same Dir is attached to instead of
//     started again; otherwise one is started in its own process group and without
//     Pdeathsig, so Ctrl-C on make dev does not reach it and it outlives the run. Call
//     Stop to shut it down, or leave it for the next run.
//
// Layout of Dir: Dir is the data directory (PGDATA) itself. pgserver owns postgresql.conf
// and pg_hba.conf there and rewrites them on every start; the server log is Dir/postgres.log
// and the Unix socket lives in Dir (clients normally use TCP on 127.0.0.1).
//
// Durability: with Fast (tests) fsync, synchronous_commit and full_page_writes are off. That
// is the fastest setting but, because synchronous_commit is off, a Kill (SIGKILL) may lose
// transactions acknowledged in the last few hundred milliseconds; chaos tests asserting that
// acknowledged commits survive a crash must run with Fast false. Without Fast (dev) only
// fsync is off: a crash or kill of PostgreSQL itself loses nothing (the WAL is written to
// the OS before a commit returns), only an OS crash or power loss can corrupt the cluster,
// and a development cluster is disposable (delete Dir).
//
// Running as root: initdb and postgres refuse to run as root. When the calling process is
// root (containers, CI), they run as the user "postgres" (else "nobody"); Dir is chowned to
// that user and every directory above Dir must be searchable by it (private temporary
// directories of this process, such as t.TempDir(), are given o+x; see ensureReachable).
//
// Security: authentication is trust, for connections over 127.0.0.1 and the Unix socket
// only (the socket directory is mode 0700). Any local user of the machine can connect as
// the superuser over TCP; this is a development and test server, never a shared one.
package pgserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sbor-dev/sbor/internal/freeport"
)

// Options configures Start.
type Options struct {
	// Dir is the data directory (PGDATA). When it holds no cluster it is created if
	// needed (it must then be empty) and initialised with initdb.
	Dir string
	// Port is the TCP port on 127.0.0.1. 0 reuses the port recorded in Dir when Dir
	// already holds a cluster, else picks a free loopback port.
	Port int
	// Reuse attaches to a postmaster that an earlier run left alive in Dir, and starts a
	// new one so that it outlives this process (no Pdeathsig). For make dev.
	Reuse bool
	// Fast turns off fsync, synchronous_commit and full_page_writes. For tests.
	Fast bool
	// BinDir is the directory of the server programs; empty means FindBinaries.
	BinDir string
}

// Superuser is the superuser role initdb creates; URL connects as it.
const Superuser = "postgres"

const (
	logName         = "postgres.log"
	maxLogSize      = 32 << 20 // rotate postgres.log to postgres.log.1 at start beyond this
	defaultDeadline = 2 * time.Minute
	// maxSocketPath is the longest Unix socket path Linux accepts (sizeof sun_path - 1).
	maxSocketPath = 107
)

// Server is a running (or stopped, after Stop or Kill) PostgreSQL server. Its methods are
// safe for concurrent use.
type Server struct {
	binDir    string
	dir       string
	port      int
	autoPort  bool // during Start only: the port was not requested and may be re-picked
	throwaway bool // !Reuse: Pdeathsig ties the postmaster to this process
	fast      bool
	runAs     *account // non-nil when this process is root

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is a postmaster, either our child or one we attached to (Reuse).
type process struct {
	pid   int
	child bool
	done  chan struct{} // child only: closed once Wait returned
	err   error         // child only: Wait's result, valid after done is closed
}

// account is the unprivileged user postgres runs as when we are root.
type account struct {
	name     string
	uid, gid uint32
}

// Start starts (or, with Reuse, attaches to) a PostgreSQL server in opts.Dir and returns
// once it accepts connections. ctx bounds the whole start, including waiting for crash
// recovery; without a deadline two minutes apply.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("pgserver: Options.Dir is empty")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("pgserver: invalid port %d", opts.Port)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	}
	s := &Server{binDir: binDir, dir: dir, port: opts.Port, throwaway: !opts.Reuse, fast: opts.Fast}
	if os.Geteuid() == 0 {
		if s.runAs, err = unprivilegedAccount(); err != nil {
			return nil, err
		}
		if err := ensureReachable(dir, s.runAs); err != nil {
			return nil, err
		}
	}
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()

	s.mu.Lock()
	defer s.mu.Unlock()

	// A postmaster still alive in dir: attach (Reuse) or refuse; a dead one: forget it.
	if pid, port, ok := s.livePostmaster(); ok {
		if !opts.Reuse {
			return nil, fmt.Errorf("pgserver: a postmaster (pid %d) is already running in %s; stop it or start with Reuse", pid, dir)
		}
		if opts.Port != 0 && opts.Port != port {
			return nil, fmt.Errorf("pgserver: the postmaster (pid %d) running in %s listens on port %d, not the requested %d", pid, dir, port, opts.Port)
		}
		s.port = port
		s.proc = &process{pid: pid}
		if err := s.waitReady(ctx, 0); err != nil {
			s.proc = nil
			return nil, fmt.Errorf("pgserver: attaching to the postmaster (pid %d) in %s: %w", pid, dir, err)
		}
		return s, nil
	}

	if !hasCluster(dir) {
		if err := s.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if s.port == 0 {
		// The port of the previous run when there is one (stable URLs for make dev), else
		// a free one; either is replaced by a free one if it turns out to be taken.
		s.autoPort = true
		if s.port = recordedPort(dir); s.port == 0 {
			if s.port, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	err = s.startLocked(ctx)
	s.autoPort = false // from now on the port is fixed: Restart keeps it
	if err != nil {
		return nil, err
	}
	return s, nil
}

// BinDir is the directory of the server programs in use.
func (s *Server) BinDir() string { return s.binDir }

// Dir is the data directory.
func (s *Server) Dir() string { return s.dir }

// Port is the TCP port on 127.0.0.1; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// LogPath is the server's log file.
func (s *Server) LogPath() string { return filepath.Join(s.dir, logName) }

// PID is the postmaster's process id, or 0 when the server is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid
}

// URL is a connection URL for database db as the superuser, over TCP on 127.0.0.1.
func (s *Server) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates database name; it is not an error if it already exists.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		// 42P04 duplicate_database; 23505 when a concurrent CREATE of the same name won.
		if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
			return nil
		}
		return fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down: fast shutdown (SIGINT: roll back open transactions,
// checkpoint), then, if it has not exited within 30 seconds, immediate shutdown (SIGQUIT),
// then SIGKILL to it and its backends. Stopping a stopped server is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

// Kill crashes the server: SIGKILL to the postmaster and all its backends at once, as an
// OOM kill or a node failure would. The data directory keeps its (stale) postmaster.pid,
// and the next start runs crash recovery.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	if err := s.killAll(p); err != nil {
		return err
	}
	s.proc = nil
	return nil
}

// killAll SIGKILLs the postmaster and its children and waits until they are gone: a new
// postmaster refuses to start while any of them still holds the old shared memory.
func (s *Server) killAll(p *process) error {
	if s.waitExit(p, 0) {
		return nil // already gone (and, if our child, reaped: its pid may be reused)
	}
	_ = syscall.Kill(p.pid, syscall.SIGSTOP) // no more forks while we collect the children
	kids := childPIDs(p.pid)
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	if !s.waitExit(p, 10*time.Second) {
		return fmt.Errorf("pgserver: postmaster pid %d survived SIGKILL", p.pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, k := range kids {
		for processAlive(k) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pgserver: backend pid %d of postmaster %d survived SIGKILL", k, p.pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// Restart stops the server if it is running (fast shutdown) and starts it again on the same
// port and data, returning once it accepts connections. After Kill it is the recovery
// from a crash.
func (s *Server) Restart(ctx context.Context) error {
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		return err
	}
	return s.startLocked(ctx)
}

func (s *Server) stopLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	for _, st := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{
		{syscall.SIGINT, 30 * time.Second},  // fast shutdown
		{syscall.SIGQUIT, 10 * time.Second}, // immediate shutdown
	} {
		if s.waitExit(p, 0) {
			break // exited on its own: do not signal a pid that may have been reused
		}
		_ = syscall.Kill(p.pid, st.sig)
		if s.waitExit(p, st.wait) {
			s.proc = nil
			return nil
		}
	}
	if err := s.killAll(p); err != nil {
		return err
	}
	s.proc = nil
	return nil
}

// waitExit reports whether the postmaster exited within d (d = 0: has exited).
func (s *Server) waitExit(p *process, d time.Duration) bool {
	if p.child {
		if d == 0 {
			select {
			case <-p.done:
				return true
			default:
				return false
			}
		}
		select {
		case <-p.done:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for {
		if !processAlive(p.pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startLocked starts a postmaster on s.port and waits until it accepts connections.
func (s *Server) startLocked(ctx context.Context) error {
	if _, _, ok := s.livePostmaster(); ok {
		return fmt.Errorf("pgserver: a postmaster is already running in %s", s.dir)
	}
	for attempt := 0; ; attempt++ {
		if err := s.writeConfig(); err != nil {
			return err
		}
		logOffset, err := s.spawn()
		if err != nil {
			return err
		}
		err = s.waitReady(ctx, logOffset)
		if err == nil {
			return nil
		}
		_ = s.killAll(s.proc)
		s.proc = nil
		// The port is taken: by another process since our probe, or since the run that
		// recorded it.
		var failed *startError
		if !errors.As(err, &failed) {
			return err
		}
		switch {
		case failed.portInUse && s.autoPort && attempt < 3:
			if s.port, err = freePort(); err != nil {
				return err
			}
		case failed.sharedMemoryInUse && ctx.Err() == nil:
			// Backends of a postmaster that was killed alone (kill -9 from outside) are
			// still exiting; they do once they notice, within a second or so.
			select {
			case <-ctx.Done():
				return err
			case <-time.After(250 * time.Millisecond):
			}
		default:
			return err
		}
	}
}

// startError is a postmaster that exited during start-up, with the causes worth a retry.
type startError struct {
	err               error
	portInUse         bool // could not bind the port
	sharedMemoryInUse bool // processes of a previous postmaster still hold its shared memory
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// spawn runs postgres -D dir as a child process, its output appended to the log file. It
// returns the log size before the start, so that errors can quote only this run's lines.
func (s *Server) spawn() (int64, error) {
	logPath := s.LogPath()
	if fi, err := os.Stat(logPath); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(logPath, logPath+".1")
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("pgserver: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	if err := s.chown(logPath); err != nil {
		return 0, err
	}
	offset, _ := logFile.Seek(0, io.SeekEnd)
	fmt.Fprintf(logFile, "--- pgserver: starting postgres on 127.0.0.1:%d at %s\n", s.port, time.Now().UTC().Format(time.RFC3339))

	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), "-D", s.dir)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.runAs != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: s.runAs.uid, Gid: s.runAs.gid}
	}
	if s.throwaway {
		setParentDeathSignal(cmd.SysProcAttr, syscall.SIGQUIT)
	}

	p := &process{child: true, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		if s.throwaway {
			// The kernel sends Pdeathsig when the thread that forked the child exits, not
			// the process (go.dev/issue/27505), and the Go runtime may retire threads. Keep
			// the forking thread locked to this goroutine, blocked in Wait, for as long as
			// the postmaster lives; when the goroutine ends the thread goes with it, which
			// is harmless then.
			runtime.LockOSThread()
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return 0, fmt.Errorf("pgserver: starting postgres: %w", err)
	}
	s.proc = p
	return offset, nil
}

// waitReady pings the server until it accepts connections, the postmaster exits or ctx
// ends.
func (s *Server) waitReady(ctx context.Context, logOffset int64) error {
	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = 2 * time.Second
	p := s.proc
	var lastErr error
	delay := 10 * time.Millisecond
	for {
		exited := false
		if p.child {
			select {
			case <-p.done:
				exited = true
			default:
			}
		} else {
			exited = !processAlive(p.pid)
		}
		if exited {
			tail := s.logTail(logOffset)
			how := "the postmaster exited"
			if p.err != nil {
				how += " (" + p.err.Error() + ")"
			}
			err := fmt.Errorf("pgserver: %s before accepting connections; %s:\n%s", how, s.LogPath(), tail)
			return &startError{
				err:               err,
				portInUse:         strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use"),
				sharedMemoryInUse: strings.Contains(tail, "pre-existing shared memory block"),
			}
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.WithoutCancel(ctx))
			if err == nil {
				return nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgserver: postgres on port %d not accepting connections: %w (last error: %v); %s:\n%s",
				s.port, ctx.Err(), lastErr, s.LogPath(), s.logTail(logOffset))
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// logTail returns the last lines written to the log since offset.
func (s *Server) logTail(offset int64) string {
	f, err := os.Open(s.LogPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > 8<<10 {
		offset = fi.Size() - 8<<10
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// initdb creates a cluster in s.dir: superuser postgres, trust authentication (pg_hba.conf
// is then narrowed to loopback by writeConfig), UTF8 with the C locale (as CloudNativePG
// creates production clusters), no fsync of the new files. It runs initdb in a sibling
// directory and renames that into place, so that an interrupted initdb never leaves a
// half-made cluster in s.dir.
func (s *Server) initdb(ctx context.Context) error {
	if entries, err := os.ReadDir(s.dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("pgserver: %s is not empty and holds no PostgreSQL cluster (no PG_VERSION); refusing to initdb into it", s.dir)
	}
	// Parents world-searchable (postgres may run as another user, see Server.runAs), the
	// data directory itself private as PostgreSQL requires.
	if err := os.MkdirAll(filepath.Dir(s.dir), 0o755); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	tmp := s.dir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := s.chown(tmp); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"),
		"-D", tmp,
		"--username="+Superuser,
		"--auth=trust",
		"--encoding=UTF8",
		"--locale=C",
		"--no-sync",
		"--no-instructions",
	)
	// On cancellation let initdb clean up after itself (it does on SIGINT).
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = tmp
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.runAs != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: s.runAs.uid, Gid: s.runAs.gid}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("pgserver: initdb -D %s: %w\n%s", tmp, err, strings.TrimSpace(out.String()))
	}
	// rename(2) replaces an empty directory.
	if err := os.Rename(tmp, s.dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// writeConfig (re)writes postgresql.conf and pg_hba.conf. It runs before every start, so
// the files always match the code and the options of this run.
func (s *Server) writeConfig() error {
	sockDir := s.dir
	if len(s.dir)+len("/.s.PGSQL.")+len(strconv.Itoa(s.port)) > maxSocketPath {
		sockDir = "" // too long for a Unix socket path: TCP only
	}
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	mode := "development: fsync off (a PostgreSQL crash loses nothing; an OS crash may corrupt this disposable cluster)"
	if s.fast {
		mode = "tests (Fast): fsync, synchronous_commit and full_page_writes off"
	}
	conf := fmt.Sprintf(`# Written by github.com/sbor-dev/sbor/internal/pgserver before every start: edits are lost.
# Mode: %s.

# Connections: loopback TCP and a private Unix socket only.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
unix_socket_permissions = 0700
# Tests run many packages in parallel, each with its own pools.
max_connections = 300

# Memory
shared_buffers = 128MB
dynamic_shared_memory_type = posix

# Durability
fsync = off
synchronous_commit = %s
full_page_writes = %s
max_wal_size = 1GB
min_wal_size = 80MB

# Logging: stderr, which pgserver sends to %s in this directory.
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%%m [%%p] %%q%%u@%%d '
log_timezone = 'UTC'

# Locale and formatting: deterministic, English messages.
timezone = 'UTC'
datestyle = 'iso, mdy'
lc_messages = 'C'
lc_monetary = 'C'
lc_numeric = 'C'
lc_time = 'C'
default_text_search_config = 'pg_catalog.english'
`, mode, s.port, sockDir, onOff(!s.fast), onOff(!s.fast), logName)
	hba := `# Written by github.com/sbor-dev/sbor/internal/pgserver before every start: edits are lost.
# Trust, but only on the private Unix socket and on 127.0.0.1.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
`
	if err := s.writeFile("postgresql.conf", conf); err != nil {
		return err
	}
	return s.writeFile("pg_hba.conf", hba)
}

func (s *Server) writeFile(name, content string) error {
	path := filepath.Join(s.dir, name)
	tmp := path + ".pgserver-tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := s.chown(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

func (s *Server) chown(path string) error {
	if s.runAs == nil {
		return nil
	}
	if err := os.Chown(path, int(s.runAs.uid), int(s.runAs.gid)); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// livePostmaster reports the postmaster recorded in dir/postmaster.pid when it is still
// running that data directory. A pid file naming a dead process, or a process that is not
// a postmaster of dir (its pid was reused), is stale and removed.
func (s *Server) livePostmaster() (pid, port int, ok bool) {
	pidPath := filepath.Join(s.dir, "postmaster.pid")
	f, err := os.Open(pidPath)
	if err != nil {
		return 0, 0, false
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	f.Close()
	if len(lines) > 0 {
		pid, _ = strconv.Atoi(lines[0])
	}
	if len(lines) > 3 {
		port, _ = strconv.Atoi(lines[3])
	}
	if pid > 0 && processAlive(pid) && isPostmasterOf(pid, s.dir) {
		if port == 0 {
			port = recordedPort(s.dir)
		}
		return pid, port, true
	}
	_ = os.Remove(pidPath)
	return 0, 0, false
}

func hasCluster(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	return err == nil
}

// recordedPort is the port written in dir/postgresql.conf by an earlier start, or 0.
func recordedPort(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "postgresql.conf"))
	if err != nil {
		return 0
	}
	port := 0
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		k, v, found := strings.Cut(line, "=")
		if !found || strings.TrimSpace(k) != "port" {
			continue
		}
		if n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(v), "'")); err == nil && n > 0 && n < 65536 {
			port = n // the last setting wins, as in PostgreSQL
		}
	}
	return port
}

// freePort picks a free TCP port on 127.0.0.1 (see package freeport for why not port 0).
func freePort() (int, error) {
	port, err := freeport.Pick()
	if err != nil {
		return 0, fmt.Errorf("pgserver: picking a free port: %w", err)
	}
	return port, nil
}

// serverEnv is this process's environment without libpq's PG* variables, which could
// otherwise change what initdb or postgres do (PGDATA, PGPORT, ...).
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// unprivilegedAccount picks the user initdb and postgres run as when we are root.
func unprivilegedAccount() (*account, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgserver: running as root, and there is no user postgres or nobody for PostgreSQL to run as (it refuses root)")
}

// ensureReachable makes sure acct can reach dir: every existing directory above it must be
// searchable by acct (missing ones are created world-searchable by initdb). A directory that
// is not is given o+x (search, not read) only when it is a temporary directory this (root)
// process owns, under os.TempDir(), such as those of os.MkdirTemp and t.TempDir, which
// are created 0700; anywhere else changing permissions is the user's call, so it is an
// error that says what to do.
func ensureReachable(dir string, acct *account) error {
	tmp, _ := filepath.Abs(os.TempDir())
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, os.ErrNotExist) && d != filepath.Dir(d) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := fi.Mode().Perm()
		var searchable bool
		switch {
		case st.Uid == acct.uid:
			searchable = perm&0o100 != 0
		case st.Gid == acct.gid:
			searchable = perm&0o010 != 0
		default:
			searchable = perm&0o001 != 0
		}
		if !searchable {
			if rel, err := filepath.Rel(tmp, d); err == nil && rel != "." && !strings.HasPrefix(rel, "..") &&
				int(st.Uid) == os.Geteuid() && st.Gid != acct.gid {
				if err := os.Chmod(d, perm|0o001); err != nil {
					return fmt.Errorf("pgserver: %w", err)
				}
				searchable = true
			}
		}
		if !searchable {
			return fmt.Errorf("pgserver: PostgreSQL refuses to run as root, so it runs as user %s, who cannot reach %s: directory %s (mode %v) is not searchable; use a data directory elsewhere or chmod o+x %s",
				acct.name, dir, d, perm, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func withDefaultDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultDeadline)
}
