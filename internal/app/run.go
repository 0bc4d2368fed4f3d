package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/sbor-dev/sbor/internal/platform/logging"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// serviceRunner runs one service on a listener.
type serviceRunner func(ctx context.Context, log *slog.Logger, c Config, ln net.Listener) error

// services are the long-running targets, in the order `sbor all` starts them.
var services = map[string]serviceRunner{
	"user":         runUser,
	"event":        runEvent,
	"ticket":       runTicket,
	"notification": runNotification,
	"gateway":      runGateway,
}

// Targets lists the names `sbor <target>` accepts.
func Targets() []string {
	names := []string{"all", "migrate", "keygen", "operator", "remind"}
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// NewLogger builds the process logger from the configuration.
func NewLogger(c Config) *slog.Logger {
	return logging.New(os.Stderr, c.LogLevel, c.LogFormat)
}

// RunTarget runs one long-running target until ctx ends.
func RunTarget(ctx context.Context, log *slog.Logger, c Config, target string) error {
	stopTracing, err := tracing.Setup(ctx, "sbor-"+target, tracing.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	if target == "operator" {
		return runOperator(ctx, log, c)
	}
	if target == "all" {
		return RunAll(ctx, log, c, func(url string) {
			fmt.Printf("\nSbor is running. Gateway: %s\n  try:  curl %s/api/events\n  Ctrl-C stops everything.\n\n", url, url)
		})
	}
	run, ok := services[target]
	if !ok {
		return fmt.Errorf("unknown target %q", target)
	}
	addr := c.HTTPAddr
	if addr == "" {
		addr = singleTargetAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveMetrics(ctx, log, c.MetricsAddr) })
	g.Go(func() error { return run(ctx, log, c, ln) })
	return g.Wait()
}
