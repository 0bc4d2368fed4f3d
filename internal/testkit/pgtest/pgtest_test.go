package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestParallelDatabasesIsolated(t *testing.T) {
	const n = 8
	var (
		mu    sync.Mutex
		names = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run(fmt.Sprintf("db%d", i), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				pool := NewPool(t)
				var name string
				if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				dup := names[name]
				names[name] = true
				mu.Unlock()
				if dup {
					t.Fatalf("database %s handed out twice", name)
				}
				// Same table name everywhere; each database must see only its own row.
				if _, err := pool.Exec(ctx, "CREATE TABLE item (owner int)"); err != nil {
					t.Fatal(err)
				}
				if _, err := pool.Exec(ctx, "INSERT INTO item VALUES ($1)", i); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // overlap with the other subtests
				var count, owner int
				if err := pool.QueryRow(ctx, "SELECT count(*), min(owner) FROM item").Scan(&count, &owner); err != nil {
					t.Fatal(err)
				}
				if count != 1 || owner != i {
					t.Errorf("database %s sees %d rows, owner %d; want only its own row %d", name, count, owner, i)
				}
			})
		}
	})
	if len(names) != n {
		t.Fatalf("%d databases, want %d", len(names), n)
	}
	// All dropped at their tests' cleanup.
	for name := range names {
		if exists(t, name) {
			t.Errorf("database %s not dropped", name)
		}
	}
}

func TestDroppedEvenWithOpenConnections(t *testing.T) {
	var name string
	t.Run("leaky", func(t *testing.T) {
		url := NewDatabase(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url) // deliberately never closed
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "testdroppedevenwithopenconnections_leaky_") {
			t.Errorf("name %q not derived from the test name", name)
		}
	})
	if exists(t, name) {
		t.Errorf("database %s not dropped", name)
	}
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	var ok bool
	err := admin.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestSweepStale(t *testing.T) {
	mk := func() string {
		dir, err := os.MkdirTemp("", tempPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	abandoned, owned, starting := mk(), mk(), mk()
	if err := os.WriteFile(filepath.Join(abandoned, lockName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := lockOwner(owned)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	sweepStale()
	if _, err := os.Stat(abandoned); !os.IsNotExist(err) {
		t.Errorf("abandoned directory kept: %v", err)
	}
	for _, dir := range []string{owned, starting} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("live directory removed: %v", err)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z][a-z0-9_]*_[0-9a-f]{10}$`)
	for _, in := range []string{
		"TestX",
		"TestPurchase/sold_out#01",
		"Test/ÜnicØde name with spaces",
		"123",
		"___",
		"",
		strings.Repeat("TestVeryLongName/", 10),
	} {
		got := databaseName(in)
		if len(got) > 63 || !valid.MatchString(got) || strings.Contains(got, "__") {
			t.Errorf("databaseName(%q) = %q", in, got)
		}
	}
	if a, b := databaseName("TestX"), databaseName("TestX"); a == b {
		t.Errorf("same name twice: %s", a)
	}
	if got := databaseName("TestPurchase/sold_out#01"); !strings.HasPrefix(got, "testpurchase_sold_out_01_") {
		t.Errorf("got %s", got)
	}
}

// BenchmarkCreateDatabase: what NewDatabase costs a test, CREATE DATABASE on the server
// (SBOR_TEST_POSTGRES_URL or this process's own); BenchmarkDropDatabase: its cleanup.
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/testkit/pgtest
func BenchmarkCreateDatabase(b *testing.B) { benchDatabase(b, true) }

func BenchmarkDropDatabase(b *testing.B) { benchDatabase(b, false) }

func benchDatabase(b *testing.B, timeCreate bool) {
	NewDatabase(b) // start the server outside the timing
	ctx := context.Background()
	for b.Loop() {
		name := databaseName(b.Name())
		if !timeCreate {
			b.StopTimer()
		}
		if err := createDatabase(ctx, name); err != nil {
			b.Fatal(err)
		}
		if timeCreate {
			b.StopTimer()
		} else {
			b.StartTimer()
		}
		if err := dropDatabase(ctx, name); err != nil {
			b.Fatal(err)
		}
		if timeCreate {
			b.StartTimer()
		}
	}
}
