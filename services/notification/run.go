package notification

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the notification service's schema.
func Migrations() []db.Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations")
	return []db.Migrations{{Table: "goose_notification_version", FS: sub}}
}

// Config configures the notification service.
type Config struct {
	DatabaseURL string
	MaxConns    int32
	Migrate     bool
	// TicketURL is the ticket service, whose internal route lists an event's holders.
	TicketURL    string
	KafkaBrokers []string
	// TopicPrefix is prepended to every topic name (SBOR_KAFKA_TOPIC_PREFIX).
	TopicPrefix string
	// ConsumerGroup defaults to TopicPrefix + DefaultConsumerGroup; every replica joins the
	// same one. The prefix keeps platforms that share a cluster under different prefixes in
	// groups of their own: one group over several platforms' topics would rebalance all of
	// them whenever one replica anywhere joins, leaves or dies.
	ConsumerGroup string
}

// Run serves the notification service on ln and consumes its topics until ctx ends. The
// HTTP API serves whether or not Kafka is reachable: the consumer waits for the brokers and
// topics on its own.
func Run(ctx context.Context, log *slog.Logger, cfg Config, ln net.Listener) error {
	log = log.With("component", "notification")
	if cfg.TicketURL == "" {
		return errors.New("notification: the ticket service URL is required")
	}
	if len(cfg.KafkaBrokers) == 0 {
		return errors.New("notification: Kafka brokers are required")
	}
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = cfg.TopicPrefix + DefaultConsumerGroup
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL, cfg.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer db.RegisterPoolMetrics("notification", pool)()
	if cfg.Migrate {
		if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
			return err
		}
	}
	store := NewStore(pool)
	core := NewCore(store, NewTicketClient(cfg.TicketURL), log)
	handler := &MessageHandler{Core: core, Store: store, TopicPrefix: cfg.TopicPrefix, Log: log}
	consumer := NewConsumer(handler, cfg.KafkaBrokers, cfg.ConsumerGroup)

	r := web.NewRouter(log, web.Service("notification"))
	// Readiness is the database only: the API stays up while Kafka is away.
	web.MountHealth(r, map[string]web.ReadinessCheck{"database": db.Ready(pool)})
	Routes(r, core)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return web.Serve(ctx, log, "notification", ln, r) })
	g.Go(func() error {
		if err := waitForTopics(ctx, log, consumer.Brokers, consumer.Topics, 2*time.Second); err != nil {
			return nil // ctx ended
		}
		log.Info("consuming", "group", consumer.Group, "topics", consumer.Topics)
		return consumer.Run(ctx)
	})
	return g.Wait()
}
