// Package app turns configuration into running targets: one per service, `all` for
// development, and the one-shot commands (migrate, keygen).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/internal/platform/web"
	"github.com/sbor-dev/sbor/services/gateway"
	"github.com/sbor-dev/sbor/services/user"
)

// singleTargetAddr is where a target listens when SBOR_HTTP_ADDR is not set (the chart's
// containers listen on all interfaces).
const singleTargetAddr = ":8080"

func require(name, value string) error {
	if value == "" {
		return fmt.Errorf("%s must be set", name)
	}
	return nil
}

func (c Config) userConfig() user.Config {
	return user.Config{
		DatabaseURL: c.UserDatabaseURL, MaxConns: c.DBMaxConns, Migrate: c.MigrateOnStart,
		KeyFile: c.JWTPrivateKeyFile, Issuer: c.JWTIssuer, Audience: c.JWTAudience,
		AccessTTL: c.AccessTokenTTL, RefreshTTL: c.RefreshTokenTTL,
		LoginLimits: user.Limits{Window: c.LoginWindow, PerIP: c.LoginMaxPerIP, PerAccount: c.LoginMaxPerAcct},
	}
}

func runUser(ctx context.Context, log *slog.Logger, c Config, ln net.Listener) error {
	if err := require("SBOR_USER_DATABASE_URL", c.UserDatabaseURL); err != nil {
		return err
	}
	return user.Run(ctx, log, c.userConfig(), ln)
}

func runGateway(ctx context.Context, log *slog.Logger, c Config, ln net.Listener) error {
	log = log.With("component", "gateway")
	trusted, err := c.trustedProxies()
	if err != nil {
		return err
	}
	jwksURL := c.JWKSURL
	if jwksURL == "" {
		if c.UserURL == "" {
			return errors.New("SBOR_USER_URL or SBOR_JWKS_URL must be set: the gateway needs the token signing keys")
		}
		jwksURL = strings.TrimSuffix(c.UserURL, "/") + "/internal/jwks"
	}
	keys := &token.RemoteKeys{URL: jwksURL, Client: &http.Client{Timeout: 5 * time.Second}, MinRefresh: 10 * time.Second, MaxAge: 10 * time.Minute}
	verifier := &token.Verifier{Keys: keys, Issuer: c.JWTIssuer, Audience: c.JWTAudience, Leeway: 30 * time.Second}
	cfg := gateway.Config{
		Upstreams: map[gateway.Upstream]string{
			gateway.UpstreamUser: c.UserURL, gateway.UpstreamEvent: c.EventURL,
			gateway.UpstreamTicket: c.TicketURL, gateway.UpstreamNotification: c.NotificationURL,
		},
		CORSOrigins: c.CORSOrigins, TrustedProxies: trusted, MaxBodyBytes: c.MaxBodyBytes,
	}
	g, err := gateway.New(log, cfg, verifier, func(r gateway.Router) {
		web.MountHealth(r, nil)
		gateway.MountDocs(r)
		gateway.MountScanner(r)
	})
	if err != nil {
		return err
	}
	return g.Serve(ctx, ln)
}

// serveMetrics exposes Prometheus metrics on their own listener, away from the public API.
func serveMetrics(ctx context.Context, log *slog.Logger, addr string) error {
	if addr == "" || addr == "off" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	return web.Serve(ctx, log, "metrics", ln, mux)
}

// Migrate applies the migrations of every service whose database URL is set.
func Migrate(ctx context.Context, log *slog.Logger, c Config) error {
	sets := c.migrationSets()
	sets["user"] = struct {
		url  string
		sets []db.Migrations
	}{c.UserDatabaseURL, user.Migrations()}
	ran := 0
	for name, s := range sets {
		if s.url == "" {
			continue
		}
		pool, err := db.Open(ctx, s.url, 2)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		err = db.Migrate(ctx, pool, s.sets...)
		pool.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		log.Info("migrated", "service", name)
		ran++
	}
	if ran == 0 {
		return errors.New("no database URL is set (SBOR_<SERVICE>_DATABASE_URL)")
	}
	return nil
}
