package db_test

import (
	"context"
	"testing"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A pool is DefaultMaxConns wide unless the configuration says otherwise, whatever the
// machine's CPU count (pgx's own default follows it).
func TestOpenSizesThePool(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	for _, tc := range []struct {
		configured, want int32
	}{{0, db.DefaultMaxConns}, {-1, db.DefaultMaxConns}, {3, 3}, {40, 40}} {
		pool, err := db.Open(context.Background(), url, tc.configured)
		if err != nil {
			t.Fatal(err)
		}
		if got := pool.Config().MaxConns; got != tc.want {
			t.Errorf("SBOR_DB_MAX_CONNS=%d: pool of %d, want %d", tc.configured, got, tc.want)
		}
		pool.Close()
	}
}
