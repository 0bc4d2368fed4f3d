package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dataDir returns a not yet existing data directory in a fresh (mode 0700) temporary
// folder directly under the system temp dir: short, so the Unix socket path fits.
func dataDir(t testing.TB) string {
	t.Helper()
	base, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return filepath.Join(base, "data")
}

func requireBinaries(t testing.TB) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		t.Fatal(err) // the machine is expected to have them (design section 7): no skip
	}
}

func start(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func query(t testing.TB, url, sql string, args ...any) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var out string
	err = conn.QueryRow(ctx, sql, args...).Scan(&out)
	return out, err
}

func mustQuery(t testing.TB, url, sql string, args ...any) string {
	t.Helper()
	out, err := query(t, url, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func exec1(t testing.TB, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestFindBinariesNotFound(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-root")
	_, err := findBinaries("", []string{missing})
	if err == nil {
		t.Fatal("want an error")
	}
	if !errors.Is(err, ErrNoBinaries) {
		t.Errorf("error does not wrap ErrNoBinaries: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"postgres, initdb, pg_ctl", "on PATH", filepath.Join(missing, "*", "bin"), "Debian package postgresql", "apt-get install postgresql"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
	if strings.Count(msg, ". ") > 0 || strings.Contains(msg, "\n") {
		t.Errorf("message should be one sentence: %q", msg)
	}
}

func fakeBin(t *testing.T, dir string, programs ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range programs {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBinariesLookupOrder(t *testing.T) {
	root := t.TempDir()
	all := []string{"postgres", "initdb", "pg_ctl"}
	fakeBin(t, filepath.Join(root, "9.6", "bin"), all...)
	fakeBin(t, filepath.Join(root, "15", "bin"), all...)
	fakeBin(t, filepath.Join(root, "17", "bin"), "postgres", "initdb") // incomplete: no pg_ctl
	fakeBin(t, filepath.Join(root, "notaversion", "bin"), all...)

	got, err := findBinaries("", []string{filepath.Join(t.TempDir(), "missing"), root})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin"); got != want {
		t.Errorf("highest complete version: got %s, want %s", got, want)
	}

	onPath := filepath.Join(t.TempDir(), "bin")
	fakeBin(t, onPath, all...)
	partial := filepath.Join(t.TempDir(), "partial")
	fakeBin(t, partial, "postgres")
	got, err = findBinaries(strings.Join([]string{partial, "", onPath}, string(os.PathListSeparator)), []string{root})
	if err != nil {
		t.Fatal(err)
	}
	if got != onPath {
		t.Errorf("PATH first: got %s, want %s", got, onPath)
	}

	// Symbolic links on PATH into one install resolve to that install.
	links := filepath.Join(t.TempDir(), "links")
	if err := os.Mkdir(links, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if err := os.Symlink(filepath.Join(root, "9.6", "bin", p), filepath.Join(links, p)); err != nil {
			t.Fatal(err)
		}
	}
	want96, _ := filepath.EvalSymlinks(filepath.Join(root, "9.6", "bin"))
	if got, err = findBinaries(links, nil); err != nil || got != want96 {
		t.Errorf("links: got %s, %v", got, err)
	}
	// Links into different installs stay as they are.
	os.Remove(filepath.Join(links, "pg_ctl"))
	if err := os.Symlink(filepath.Join(root, "15", "bin", "pg_ctl"), filepath.Join(links, "pg_ctl")); err != nil {
		t.Fatal(err)
	}
	if got, err = findBinaries(links, nil); err != nil || got != links {
		t.Errorf("mixed links: got %s, %v", got, err)
	}
}

func TestStartStopRestart(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	s := start(t, Options{Dir: dir, Fast: true})

	if s.Port() == 0 || s.PID() == 0 {
		t.Fatalf("port %d pid %d", s.Port(), s.PID())
	}
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app?sslmode=disable", s.Port()); s.URL("app") != want {
		t.Errorf("URL = %s, want %s", s.URL("app"), want)
	}
	for _, c := range []struct{ setting, want string }{
		{"listen_addresses", "127.0.0.1"},
		{"max_connections", "300"},
		{"shared_buffers", "128MB"},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"server_encoding", "UTF8"},
		{"unix_socket_directories", s.Dir()},
	} {
		if got := mustQuery(t, s.URL("postgres"), "SELECT current_setting($1)", c.setting); got != c.want {
			t.Errorf("%s = %q, want %q", c.setting, got, c.want)
		}
	}
	if _, err := os.Stat(s.LogPath()); err != nil {
		t.Errorf("log file: %v", err)
	}

	ctx := context.Background()
	for range 2 { // idempotent
		if err := s.CreateDatabase(ctx, "app"); err != nil {
			t.Fatal(err)
		}
	}
	exec1(t, s.URL("app"), "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')")

	port, pid := s.Port(), s.PID()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Errorf("port changed across Restart: %d -> %d", port, s.Port())
	}
	if s.PID() == pid {
		t.Errorf("Restart kept pid %d", pid)
	}
	if got := mustQuery(t, s.URL("app"), "SELECT v FROM t"); got != "kept" {
		t.Errorf("after restart: %q", got)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Errorf("PID after Stop = %d", s.PID())
	}
	if processAlive(pid) {
		t.Errorf("postmaster %d still alive after Stop", pid)
	}
	if _, err := query(t, s.URL("postgres"), "SELECT 'x'"); err == nil {
		t.Error("server answers after Stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("postmaster.pid after a clean stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// A new Start in the same Dir with Port 0 reuses the recorded port and the data.
	s2 := start(t, Options{Dir: dir, Fast: true})
	if s2.Port() != port {
		t.Errorf("recorded port not reused: %d, want %d", s2.Port(), port)
	}
	if got := mustQuery(t, s2.URL("app"), "SELECT v FROM t"); got != "kept" {
		t.Errorf("after new start: %q", got)
	}
}

func TestKillAndRestart(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	// Not Fast: with synchronous_commit on, acknowledged commits must survive a crash.
	s := start(t, Options{Dir: dataDir(t)})
	if got := mustQuery(t, s.URL("postgres"), "SELECT current_setting('synchronous_commit')"); got != "on" {
		t.Errorf("synchronous_commit = %s without Fast", got)
	}
	exec1(t, s.URL("postgres"), "CREATE TABLE t (v text); INSERT INTO t VALUES ('committed')")

	// An open connection sees the crash.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	pid := s.PID()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Fatalf("postmaster %d alive after Kill", pid)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("connection survived Kill")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "postmaster.pid")); err != nil {
		t.Errorf("a crash leaves postmaster.pid behind: %v", err)
	}

	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, s.URL("postgres"), "SELECT v FROM t"); got != "committed" {
		t.Errorf("after crash recovery: %q", got)
	}
	if log, _ := os.ReadFile(s.LogPath()); !strings.Contains(string(log), "not properly shut down") {
		t.Error("log does not show crash recovery")
	}
}

// TestPostmasterKilledFromOutside: kill -9 of the postmaster alone (its backends live on
// until they notice), then Stop and Restart still work.
func TestPostmasterKilledFromOutside(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	s := start(t, Options{Dir: dataDir(t), Fast: true})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL("postgres")) // a backend that outlives the postmaster
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pid := s.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for processAlive(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop after the postmaster died: %v", err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	mustQuery(t, s.URL("postgres"), "SELECT 'ok'")
}

func TestReuseAttachesToLivePostmaster(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	ctx := context.Background()
	first, err := Start(ctx, Options{Dir: dir, Reuse: true, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Stop() })
	exec1(t, first.URL("postgres"), "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('first')")

	// Without Reuse a live postmaster in Dir is an error, not a second server.
	if _, err := Start(ctx, Options{Dir: dir, Fast: true}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("Start without Reuse over a live postmaster: %v", err)
	}
	// A different port than the live one is an error too.
	if _, err := Start(ctx, Options{Dir: dir, Reuse: true, Port: first.Port() + 1}); err == nil {
		t.Fatal("Reuse with a conflicting port: want an error")
	}

	second := start(t, Options{Dir: dir, Reuse: true})
	if second.PID() != first.PID() || second.Port() != first.Port() {
		t.Fatalf("did not attach: pid %d port %d, first pid %d port %d", second.PID(), second.Port(), first.PID(), first.Port())
	}
	if got := mustQuery(t, second.URL("postgres"), "SELECT v FROM marker"); got != "first" {
		t.Errorf("attached server data: %q", got)
	}

	// Stop through the attached handle stops the shared postmaster.
	pid := first.PID()
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Errorf("postmaster %d alive after Stop via the attached handle", pid)
	}
	select {
	case <-first.proc.done:
	case <-time.After(5 * time.Second):
		t.Error("first handle did not see its child exit")
	}
}

func TestStalePidFile(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	s := start(t, Options{Dir: dir, Fast: true})
	port := s.Port()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// A pid that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// A live process that is not a postmaster of dir: this test process.
	for name, pid := range map[string]int{"dead": dead.Process.Pid, "reused": os.Getpid()} {
		t.Run(name, func(t *testing.T) {
			pidFile := filepath.Join(dir, "postmaster.pid")
			content := fmt.Sprintf("%d\n%s\n1700000000\n%d\n%s\n127.0.0.1\n  5432001         0\nready   \n", pid, dir, port, dir)
			if err := os.WriteFile(pidFile, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := start(t, Options{Dir: dir, Reuse: true, Fast: true})
			if s.PID() == pid {
				t.Fatalf("attached to stale pid %d", pid)
			}
			if s.Port() != port {
				t.Errorf("port %d, want recorded %d", s.Port(), port)
			}
			mustQuery(t, s.URL("postgres"), "SELECT 'ok'")
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// helperMain is the body of a child test process (see startHelper): it starts a server
// in PGSERVER_TEST_HELPER_DIR, prints its pid, then waits to be killed or, with Reuse,
// exits at once without stopping the server, as make dev does.
func helperMain() {
	dir, reuse := os.Getenv("PGSERVER_TEST_HELPER_DIR"), os.Getenv("PGSERVER_TEST_HELPER_REUSE") != ""
	s, err := Start(context.Background(), Options{Dir: dir, Fast: true, Reuse: reuse})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("pid:", s.PID())
	if reuse {
		os.Exit(0)
	}
	time.Sleep(time.Minute) // until killed
	os.Exit(2)
}

// startHelper runs helperMain in a child process and returns it with the postmaster's pid.
func startHelper(t *testing.T, dir string, reuse bool) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "PGSERVER_TEST_HELPER_DIR="+dir)
	if reuse {
		cmd.Env = append(cmd.Env, "PGSERVER_TEST_HELPER_REUSE=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "pid: ") {
		t.Fatalf("helper said %q (%v)", line, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid: ")))
	if err != nil {
		t.Fatal(err)
	}
	return cmd, pid
}

func TestHelperProcess(t *testing.T) {
	if os.Getenv("PGSERVER_TEST_HELPER_DIR") != "" {
		helperMain()
	}
}

// TestThrowawayDiesWithParent kills (SIGKILL) a process that started a throwaway server and
// checks that the server goes down with it (Pdeathsig).
func TestThrowawayDiesWithParent(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	cmd, pid := startHelper(t, dataDir(t), false)
	if !processAlive(pid) {
		t.Fatalf("postmaster %d not running", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d outlived its killed parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReuseOutlivesParent is the make dev cycle: a run starts the server with Reuse and
// exits without stopping it; the next run attaches to the same postmaster.
func TestReuseOutlivesParent(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	cmd, pid := startHelper(t, dir, true)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	time.Sleep(200 * time.Millisecond)
	if !processAlive(pid) {
		t.Fatalf("postmaster %d died with the run that started it", pid)
	}
	s := start(t, Options{Dir: dir, Reuse: true})
	if s.PID() != pid {
		t.Fatalf("started pid %d instead of attaching to %d", s.PID(), pid)
	}
	mustQuery(t, s.URL("postgres"), "SELECT 'ok'")
}

func TestRecordedPortTaken(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	s := start(t, Options{Dir: dir, Fast: true})
	port := s.Port()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Skipf("cannot occupy port %d: %v", port, err)
	}
	defer l.Close()

	// Asked for explicitly: an error that says why.
	ctx := context.Background()
	if _, err := Start(ctx, Options{Dir: dir, Fast: true, Port: port}); err == nil || !strings.Contains(err.Error(), "could not bind") {
		t.Errorf("explicit taken port: %v", err)
	}
	// Only recorded: a new port.
	s2 := start(t, Options{Dir: dir, Fast: true})
	if s2.Port() == port {
		t.Fatalf("still on taken port %d", port)
	}
	mustQuery(t, s2.URL("postgres"), "SELECT 'ok'")
	if recordedPort(dir) != s2.Port() {
		t.Errorf("new port not recorded")
	}
}

func TestRefusesNonEmptyDir(t *testing.T) {
	requireBinaries(t)
	dir := dataDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("want a not-empty error, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Error(err)
	}
}

func TestRootNeedsReachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs postgres as another user")
	}
	acct, err := unprivilegedAccount()
	if err != nil {
		t.Fatal(err)
	}
	// A private temporary directory of ours is opened for search (not read).
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := ensureReachable(filepath.Join(private, "a", "data"), acct); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(private); fi.Mode().Perm() != 0o701 {
		t.Errorf("temp dir mode %v, want 0701", fi.Mode().Perm())
	}
	// Outside the temp dir nothing is changed: an error naming the directory.
	elsewhere := t.TempDir()
	if err := os.Chmod(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", t.TempDir())
	err = ensureReachable(filepath.Join(elsewhere, "data"), acct)
	if err == nil || !strings.Contains(err.Error(), elsewhere) || !strings.Contains(err.Error(), "chmod o+x") {
		t.Fatalf("want an error naming %s, got %v", elsewhere, err)
	}
	if fi, _ := os.Stat(elsewhere); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode changed to %v", fi.Mode().Perm())
	}
}

func TestRecordedPort(t *testing.T) {
	dir := t.TempDir()
	conf := "# port = 1\nport = 5433 # first\nport = '6543'\n"
	if err := os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := recordedPort(dir); got != 6543 {
		t.Errorf("recordedPort = %d", got)
	}
	if got := recordedPort(t.TempDir()); got != 0 {
		t.Errorf("no conf: %d", got)
	}
}
