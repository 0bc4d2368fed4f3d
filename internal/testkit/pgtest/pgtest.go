// Package pgtest gives each test its own, empty PostgreSQL database on a real server.
//
// Why: Sbor's tests run against real PostgreSQL, never a mock (design section 7), and they
// run in parallel; a database per test isolates them from each other without a server per
// test. Creating a database is cheap (tens of milliseconds, see NewDatabase); starting a
// server is not (about two seconds for initdb), so there is at most one server per test
// process, and none when make test provides one.
//
// Where the server comes from:
//
//   - SBOR_TEST_POSTGRES_URL, when set, is a superuser URL to an existing server (make test
//     starts one for the whole run and sets it). Databases are created there and dropped
//     after each test.
//   - Otherwise the first NewDatabase of the process starts a throwaway server from the
//     machine's PostgreSQL binaries (internal/pgserver with Fast: fsync, synchronous_commit
//     and full_page_writes off) in a temporary directory. It dies with the test process. Use Main in TestMain so
//     that it is also stopped and its directory removed when the tests end; directories
//     left by test processes that did not (or crashed) are removed by the next run.
//
// Usage:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) } // or call pgtest.Shutdown after m.Run
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		pool := pgtest.NewPool(t) // fresh database, closed and dropped at cleanup
//		...
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/pgserver"
	"github.com/sbor-dev/sbor/internal/platform/db"
)

// EnvURL names the environment variable holding a superuser URL to an existing server.
const EnvURL = "SBOR_TEST_POSTGRES_URL"

const (
	tempPrefix = "sbor-pgtest-"
	lockName   = "owner.lock"
	maxNameLen = 63 // PostgreSQL's NAMEDATALEN - 1
)

var (
	once     sync.Once
	setupErr error
	admin    *pgxpool.Pool // to the server's maintenance database, as a superuser
	baseURL  *url.URL      // a superuser URL; per-test URLs differ only in the database
	create   string        // CREATE DATABASE statement suffix (strategy)

	// Set when this process started the server.
	server  *pgserver.Server
	tempDir string
	lock    *os.File
)

// NewDatabase creates a fresh, empty database for t and returns a superuser URL to it. The
// database is named after the test plus a random suffix, so parallel tests, and test
// processes sharing a server, never collide; it is dropped (WITH (FORCE), closing
// connections left open) when t ends. A server that cannot be started or reached fails t.
func NewDatabase(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := createDatabase(ctx, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	u := *baseURL
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

func createDatabase(ctx context.Context, name string) error {
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+create); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func dropDatabase(ctx context.Context, name string) error {
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// NewPool creates a fresh database (NewDatabase) and returns a pool connected to it as the
// services connect (db.Open), closed when t ends, before the database is dropped.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := db.Open(ctx, dbURL, 0)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Main runs the tests, then Shutdown, and exits with the tests' code. Call it from
// TestMain; a TestMain that must also stop other harnesses calls Shutdown itself.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	raw := os.Getenv(EnvURL)
	if raw == "" {
		if raw, setupErr = startServer(ctx); setupErr != nil {
			return
		}
	}
	if baseURL, setupErr = url.Parse(raw); setupErr != nil || (baseURL.Scheme != "postgres" && baseURL.Scheme != "postgresql") {
		setupErr = fmt.Errorf("%s must be a postgres:// URL, got %q", EnvURL, raw)
		return
	}
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		setupErr = err
		return
	}
	cfg.MaxConns = 8
	if admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		setupErr = err
		return
	}
	var version int
	if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		setupErr = fmt.Errorf("connecting to %s: %w", redact(baseURL), err)
		return
	}
	// FILE_COPY (PostgreSQL 15+) copies the template's files and checkpoints: about 40 ms
	// against about 70 ms for the default WAL_LOG, which writes every page of the template
	// to the WAL. Before 15 FILE_COPY was the only behaviour and the clause did not exist.
	if version >= 150000 {
		create = " STRATEGY FILE_COPY"
	}
}

// startServer starts this process's throwaway server and returns its superuser URL.
func startServer(ctx context.Context) (string, error) {
	sweepStale()
	var err error
	if tempDir, err = os.MkdirTemp("", tempPrefix); err != nil {
		return "", err
	}
	// World-searchable, so that postgres can reach its data directory when it runs as
	// another user (tests running as root); the data directory itself is private.
	if err := os.Chmod(tempDir, 0o755); err != nil {
		return "", err
	}
	if lock, err = lockOwner(tempDir); err != nil {
		return "", err
	}
	server, err = pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(tempDir, "data"), Fast: true})
	if err != nil {
		return "", err
	}
	return server.URL("postgres"), nil
}

// shutdown (exported as Shutdown in shutdown.go) closes the connections pgtest holds and,
// when this process started the server, stops it and removes its directory. It is safe to
// call when no database was ever created, and more than once.
func shutdown() error {
	if admin != nil {
		admin.Close()
		admin = nil
	}
	if server == nil {
		return nil
	}
	err := server.Stop()
	if err == nil {
		err = os.RemoveAll(tempDir)
	}
	if lock != nil {
		lock.Close()
		lock = nil
	}
	server = nil
	return err
}

// lockOwner creates dir/owner.lock and holds an exclusive flock on it for the life of this
// process; the kernel releases it when the process ends, however it ends.
func lockOwner(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sweepStale removes the directories of earlier test processes that ended without Main
// (their servers died with them): those whose owner lock can be taken. A directory still
// without a lock file may be being created right now, so it is left unless it is old.
func sweepStale() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range matches {
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.RemoveAll(dir)
			}
			continue
		}
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

// databaseName turns a test name into a database name: lower case letters, digits and
// underscores, at most 63 bytes including a random suffix.
func databaseName(testName string) string {
	var b strings.Builder
	underscore := true // no leading underscore
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			underscore = false
		} else if !underscore {
			b.WriteByte('_')
			underscore = true
		}
	}
	var random [5]byte
	_, _ = rand.Read(random[:])
	suffix := "_" + hex.EncodeToString(random[:])
	base := strings.TrimRight(b.String(), "_")
	switch {
	case base == "":
		base = "t"
	case base[0] < 'a' || base[0] > 'z':
		base = "t_" + base
	}
	if len(base) > maxNameLen-len(suffix) {
		base = strings.TrimRight(base[:maxNameLen-len(suffix)], "_")
	}
	return base + suffix
}

func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}
