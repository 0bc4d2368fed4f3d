package user

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the user service's schema.
func Migrations() []db.Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations")
	return []db.Migrations{{Table: "goose_user_version", FS: sub}}
}

// Config configures the user service.
type Config struct {
	DatabaseURL string
	MaxConns    int32
	Migrate     bool
	KeyFile     string
	Issuer      string
	Audience    string
	AccessTTL   time.Duration
	RefreshTTL  time.Duration
	LoginLimits Limits
	PruneEvery  time.Duration
}

// Run serves the user service on ln until ctx ends.
func Run(ctx context.Context, log *slog.Logger, cfg Config, ln net.Listener) error {
	log = log.With("component", "user")
	pool, err := db.Open(ctx, cfg.DatabaseURL, cfg.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer db.RegisterPoolMetrics("user", pool)()
	if cfg.Migrate {
		if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
			return err
		}
	}
	key, generated, err := token.LoadKeyFile(cfg.KeyFile)
	if err != nil {
		return err
	}
	if generated {
		log.Warn("no signing key configured (SBOR_JWT_PRIVATE_KEY_FILE): using a throwaway key; tokens will not survive a restart")
	}
	core := NewCore(NewStore(pool), token.NewSigner(key, cfg.Issuer, cfg.Audience, cfg.AccessTTL), cfg.RefreshTTL, cfg.LoginLimits)
	return serve(ctx, log, pool, core, cfg, ln)
}

func serve(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool, core *Core, cfg Config, ln net.Listener) error {
	r := web.NewRouter(log, web.Service("user"))
	web.MountHealth(r, map[string]web.ReadinessCheck{"database": db.Ready(pool)})
	Routes(r, core)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return web.Serve(ctx, log, "user", ln, r) })
	g.Go(func() error {
		every := cfg.PruneEvery
		if every == 0 {
			every = time.Hour
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := core.store.Prune(ctx); err != nil {
					log.Warn("prune failed", "err", err)
				}
			}
		}
	})
	return g.Wait()
}
