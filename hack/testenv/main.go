// Command testenv starts the shared services of one `make test` run — one PostgreSQL server
// and one Apache Kafka broker — runs a command with their addresses in the environment, and
// stops them afterwards. A JVM per test package would cost minutes on two cores; with
// SBOR_TEST_POSTGRES_URL and KAFKA_BROKERS set, the test harnesses (internal/testkit) reuse
// these instead, giving each test its own database and topic prefix.
//
//	go run ./hack/testenv -- go test ./...
//
// A variable that is already set is kept (point KAFKA_BROKERS at an existing cluster, say).
// When the broker cannot be started, the run fails if SBOR_REQUIRE_KAFKA=1 (CI sets it);
// otherwise it says so in one line and the tests fall back to an in-process broker.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sbor-dev/sbor/internal/pgserver"
	"github.com/sbor-dev/sbor/internal/testkit/kafkaserver"
)

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run() (int, error) {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return 2, errors.New("usage: testenv -- command [args...]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "sbor-testenv-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)

	if os.Getenv("SBOR_TEST_POSTGRES_URL") == "" {
		start := time.Now()
		pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(dir, "postgres"), Fast: true})
		if err != nil {
			return 1, fmt.Errorf("postgres: %w", err)
		}
		defer pg.Stop()
		os.Setenv("SBOR_TEST_POSTGRES_URL", pg.URL("postgres"))
		fmt.Fprintf(os.Stderr, "testenv: PostgreSQL on port %d (%.1fs)\n", pg.Port(), time.Since(start).Seconds())
	}
	if os.Getenv("KAFKA_BROKERS") == "" {
		start := time.Now()
		kafka, err := kafkaserver.Start(ctx, kafkaserver.Options{Dir: filepath.Join(dir, "kafka")})
		switch {
		case err != nil && os.Getenv("SBOR_REQUIRE_KAFKA") == "1":
			return 1, fmt.Errorf("Apache Kafka is required (SBOR_REQUIRE_KAFKA=1) but did not start: %w", err)
		case err != nil:
			fmt.Fprintf(os.Stderr, "testenv: Apache Kafka did not start (%v); tests fall back to an in-process broker\n", err)
		default:
			defer kafka.Stop()
			os.Setenv("KAFKA_BROKERS", kafka.Brokers())
			fmt.Fprintf(os.Stderr, "testenv: Apache Kafka at %s (%.1fs)\n", kafka.Brokers(), time.Since(start).Seconds())
		}
	}

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}
