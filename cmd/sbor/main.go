// Command sbor runs any component of the Sbor platform: `sbor <target>`.
//
//	sbor gateway|user|event|ticket|notification   one service (one per Deployment)
//	sbor all                                       every service in one process (development)
//	sbor operator                                  the Kubernetes operator (event lifecycles, reminders, topics)
//	sbor remind --event ID                         ask the event service to send an event's reminder (CronJob)
//	sbor migrate                                   apply the migrations of every configured database
//	sbor keygen                                    print a new Ed25519 token signing key (PEM)
//
// Configuration comes from the environment; see the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sbor-dev/sbor/internal/app"
	"github.com/sbor-dev/sbor/internal/platform/token"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sbor:", err)
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage: sbor <target>\n  targets: %s, version", strings.Join(app.Targets(), ", "))
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usage()
	}
	target, rest := args[0], args[1:]
	switch target {
	case "version", "--version":
		fmt.Println(version)
		return nil
	case "keygen":
		pem, err := token.GenerateKeyPEM()
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(pem)
		return err
	case "help", "-h", "--help":
		fmt.Println(usage())
		return nil
	}
	if len(rest) > 0 && target != "remind" {
		return fmt.Errorf("%s takes no arguments, got %q", target, rest)
	}
	cfg, err := app.LoadConfig()
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg)
	log.Info("starting", "target", target, "version", version)
	switch target {
	case "migrate":
		return app.Migrate(ctx, log, cfg)
	case "remind":
		return app.Remind(ctx, log, cfg, rest)
	default:
		err := app.RunTarget(ctx, log, cfg, target)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}
