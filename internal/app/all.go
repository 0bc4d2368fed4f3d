package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"

	"golang.org/x/sync/errgroup"

	"github.com/sbor-dev/sbor/internal/pgserver"
)

// devGatewayAddr is where `sbor all` serves the API when SBOR_HTTP_ADDR is not set.
const devGatewayAddr = "127.0.0.1:8080"

// RunAll runs every service in one process, for development: each service on a free loopback
// port, wired to the others exactly as in Kubernetes, and the gateway on SBOR_HTTP_ADDR.
// ready, if not nil, receives the gateway URL once everything listens.
func RunAll(ctx context.Context, log *slog.Logger, c Config, ready func(gatewayURL string)) error {
	stopPostgres, err := provideDatabases(ctx, log, &c)
	if err != nil {
		return err
	}
	defer stopPostgres()

	stopKafka, err := provideKafka(log, &c)
	if err != nil {
		return err
	}
	defer stopKafka()

	listeners := map[string]net.Listener{}
	for _, name := range []string{"user", "event", "ticket", "notification"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		listeners[name] = ln
	}
	c.UserURL = "http://" + listeners["user"].Addr().String()
	c.EventURL = "http://" + listeners["event"].Addr().String()
	c.TicketURL = "http://" + listeners["ticket"].Addr().String()
	c.NotificationURL = "http://" + listeners["notification"].Addr().String()

	addr := c.HTTPAddr
	if addr == "" {
		addr = devGatewayAddr
	}
	gwLn, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway address %s: %w", addr, err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveMetrics(gctx, log, c.MetricsAddr) })
	for name, ln := range listeners {
		g.Go(func() error { return services[name](gctx, log, c, ln) })
	}
	g.Go(func() error { return runGateway(gctx, log, c, gwLn) })
	url := "http://" + gwLn.Addr().String()
	log.Info("sbor is running", "gateway", url)
	if ready != nil {
		ready(url)
	}
	return g.Wait()
}

// provideDatabases fills in the per-service database URLs: given ones are kept; otherwise
// databases are created on SBOR_POSTGRES_URL's server or on a PostgreSQL of our own in
// SBOR_DEV_POSTGRES_DIR. The returned function stops a server it started.
func provideDatabases(ctx context.Context, log *slog.Logger, c *Config) (func(), error) {
	targets := map[string]*string{
		"sbor_user":         &c.UserDatabaseURL,
		"sbor_event":        &c.EventDatabaseURL,
		"sbor_ticket":       &c.TicketDatabaseURL,
		"sbor_notification": &c.NotificationDatabaseURL,
	}
	missing := false
	for _, url := range targets {
		missing = missing || *url == ""
	}
	if !missing {
		return func() {}, nil
	}
	var srv *pgserver.Server
	var serverURL func(db string) string
	switch {
	case c.PostgresURL != "":
		serverURL = func(db string) string { return withDatabase(c.PostgresURL, db) }
		if err := createDatabases(ctx, c.PostgresURL, targets); err != nil {
			return nil, err
		}
	case c.DevPostgresDir != "":
		var err error
		srv, err = pgserver.Start(ctx, pgserver.Options{Dir: c.DevPostgresDir, Reuse: true})
		if err != nil {
			return nil, err
		}
		log.Info("postgres is running", "dir", c.DevPostgresDir, "port", srv.Port())
		for name := range targets {
			if err := srv.CreateDatabase(ctx, name); err != nil {
				srv.Stop()
				return nil, err
			}
		}
		serverURL = srv.URL
	default:
		return nil, fmt.Errorf("no database: set SBOR_<SERVICE>_DATABASE_URL, SBOR_POSTGRES_URL, or SBOR_DEV_POSTGRES_DIR (make dev does)")
	}
	for name, url := range targets {
		if *url == "" {
			*url = serverURL(name)
		}
	}
	return func() {
		if srv != nil {
			if err := srv.Stop(); err != nil {
				log.Warn("stopping postgres", "err", err)
			}
		}
	}, nil
}

// provideKafka starts an embedded Kafka-protocol broker (franz-go's kfake) when KAFKA_BROKERS
// is not set. With SBOR_DEV_KAFKA_DIR its data survives restarts.
func provideKafka(log *slog.Logger, c *Config) (func(), error) {
	if c.KafkaBrokers != "" {
		return func() {}, nil
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(c.KafkaPartitions), kfake.AllowAutoTopicCreation()}
	if c.DevKafkaDir != "" {
		if err := os.MkdirAll(c.DevKafkaDir, 0o755); err != nil {
			return nil, err
		}
		opts = append(opts, kfake.DataDir(c.DevKafkaDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	c.KafkaBrokers = strings.Join(cluster.ListenAddrs(), ",")
	log.Info("embedded kafka broker is running", "brokers", c.KafkaBrokers)
	return cluster.Close, nil
}
