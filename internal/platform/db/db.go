// Package db opens PostgreSQL pools, runs embedded goose migrations and wraps transactions.
package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// DefaultMaxConns is a service's pool size when none is configured.
//
// pgx's own default, the larger of 4 and the number of CPUs, follows the wrong machine: the
// client's CPUs say nothing about how many requests wait on the database at once, which is
// what the pool must cover. With four on the bench's two cores, the ticket service's GET
// rounds queued for a connection with the machine 5 % idle; with eight they were
// CPU-bound (95-96 % busy) and the gateway-overhead figure fell from 19.9-21.7 % to
// 12.9-19.8 % over three runs each. It is also a fixed number, not one that grows with the
// node: at the chart's largest autoscaling (10 replicas) a service's pools and its relays'
// listening connections stay under CloudNativePG's max_connections of 100.
const DefaultMaxConns = 8

// Open connects a pool to url and checks that the server answers. maxConns <= 0 means
// DefaultMaxConns.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redact(err))
	}
	cfg.MaxConns = DefaultMaxConns
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		RegisterUUID(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database %s: %w", cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// redact drops the connection string from a parse error so a password never reaches a log.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string")
	}
	return err
}

// Migrations is one set of embedded migrations with its own version table, so a shared
// component (the outbox) can own its schema beside the service's.
type Migrations struct {
	Table string
	FS    fs.FS
}

// Migrate applies every set in order. An advisory lock serialises replicas that start at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, sets ...Migrations) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	for i, set := range sets {
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lock.DefaultLockID+int64(i)), lock.WithLockTimeout(1, 300))
		if err != nil {
			return err
		}
		p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, set.FS,
			goose.WithTableName(set.Table), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set.Table, err)
		}
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrate %s: %w", set.Table, err)
		}
	}
	return nil
}

// InTx runs fn in a transaction, committing if it returns nil and rolling back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// IsUniqueViolation reports whether err is a unique violation, of the named constraint when
// constraint is not empty.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// Unavailable turns a failure to reach the database into a 503 so clients retry instead of
// seeing a 500. Business errors and SQL errors (our bugs) pass through unchanged.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errs.As(err); ok || !IsConnectionFailure(err) {
		return err
	}
	e := errs.New(errs.Unavailable, "database_unavailable", "the database is unavailable; retry shortly")
	e.RetryAfter = 1
	e.Err = err
	return e
}

// IsConnectionFailure reports whether err means the database could not be reached or went
// away, as opposed to refusing a statement.
func IsConnectionFailure(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "53": // connection exception, operator intervention (shutdown), insufficient resources
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

// Ready is a readiness check that pings the pool.
func Ready(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error { return pool.Ping(ctx) }
}
