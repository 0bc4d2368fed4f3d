// Package web holds the HTTP building blocks every Sbor service shares: a router with standard
// middleware, strict JSON decoding, RFC 9457 problem+json errors, health and readiness, and a
// server with graceful shutdown.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// Server timeouts: generous enough for slow mobile clients, short enough that a slow-loris
// client cannot hold a connection.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
	ShutdownTimeout   = 20 * time.Second
)

// Serve serves h on ln until ctx is cancelled, then drains in-flight requests.
func Serve(ctx context.Context, log *slog.Logger, name string, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	return ServeUntil(ctx, log, name, ln, srv.Serve, srv.Shutdown)
}

// ServeUntil runs serve on ln until ctx is cancelled, then calls shutdown, which must let
// in-flight requests finish (for at most ShutdownTimeout) and make serve return. It is the
// life cycle of Serve for a server that is not net/http's (the gateway's).
func ServeUntil(ctx context.Context, log *slog.Logger, name string, ln net.Listener,
	serve func(net.Listener) error, shutdown func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve(ln) }()
	log.Info("listening", "server", name, "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped", "server", name)
	return nil
}

// Listen opens a TCP listener on addr.
func Listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

// ReadinessCheck reports whether a dependency is usable.
type ReadinessCheck func(ctx context.Context) error

// MountHealth adds /healthz (the process is alive) and /readyz (every check passes) to r.
func MountHealth(r chi.Router, checks map[string]ReadinessCheck) {
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		Respond(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		result := map[string]string{}
		status := http.StatusOK
		for name, check := range checks {
			if err := check(ctx); err != nil {
				result[name] = err.Error()
				status = http.StatusServiceUnavailable
			} else {
				result[name] = "ok"
			}
		}
		Respond(w, status, map[string]any{"status": http.StatusText(status), "checks": result})
	})
}
