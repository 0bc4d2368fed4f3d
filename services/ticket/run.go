package ticket

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the ticket service's schema and the outbox's.
func Migrations() []db.Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations")
	return []db.Migrations{{Table: "goose_ticket_version", FS: sub}, outbox.Migrations()}
}

// Config configures the ticket service.
type Config struct {
	DatabaseURL string
	MaxConns    int32
	Migrate     bool
	// EventURL is the event service's base URL, for GET /internal/events/{id}.
	EventURL string
	// UserURL is the user service's base URL, for GET /internal/users?email= (door staff,
	// transfers). Empty: those lookups answer 503, everything else works.
	UserURL string
	// StatsInterval is how long a GET /api/events/{id}/stats snapshot is served before it is
	// refreshed (DefaultStatsInterval, 1 s, when 0): the staleness bound of live counts.
	StatsInterval time.Duration
	KafkaBrokers  []string
	// TopicPrefix is prepended to every topic, published and consumed.
	TopicPrefix string
	// CreateTopics creates the topics this service uses, if missing, at start.
	CreateTopics      bool
	Partitions        int
	ReplicationFactor int
	// ConsumerGroup is the group of the event.cancelled consumer; empty means TopicPrefix +
	// DefaultConsumerGroup, so platforms sharing a cluster under different prefixes never
	// join one group.
	ConsumerGroup string
	// Purchase tunes the purchase path: the event status cache and the grouping of
	// purchases (zero values: the defaults).
	Purchase Options
}

// idempotencyRetention is how long an Idempotency-Key keeps answering retries.
const idempotencyRetention = 24 * time.Hour

// Run serves the ticket service on ln until ctx ends, with its outbox relay and its
// event.cancelled consumer.
func Run(ctx context.Context, log *slog.Logger, cfg Config, ln net.Listener) error {
	log = log.With("component", "ticket")
	if cfg.EventURL == "" {
		return errors.New("ticket: the event service URL is required")
	}
	if len(cfg.KafkaBrokers) == 0 {
		return errors.New("ticket: Kafka brokers are required")
	}
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = cfg.TopicPrefix + DefaultConsumerGroup
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL, cfg.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer db.RegisterPoolMetrics("ticket", pool)()
	if cfg.Migrate {
		if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
			return err
		}
	}
	events := NewEventClient(cfg.EventURL, EventTimeout)
	defer events.Close()
	if cfg.UserURL == "" {
		log.Warn("no user service URL configured (SBOR_USER_URL): granting door staff answers 503")
	}
	users := NewUserClient(cfg.UserURL, UserTimeout)
	defer users.Close()
	store := NewStore(pool)
	core := NewCoreWith(store, events, cfg.Purchase)

	writer := kafkabus.NewWriter(cfg.KafkaBrokers)
	defer writer.Close()
	relay := &outbox.Relay{Pool: pool, Publisher: writer, Log: log, Service: "ticket", TopicPrefix: cfg.TopicPrefix}
	cancelledTopic := cfg.TopicPrefix + cloudevent.TypeEventCancelled
	consumer := &kafkabus.Consumer{
		Brokers: cfg.KafkaBrokers, Group: cfg.ConsumerGroup, Topics: []string{cancelledTopic},
		Handler: cancellationHandler(store, log, core.EventCancelled), Log: log,
	}

	r := web.NewRouter(log, web.Service("ticket"))
	web.MountHealth(r, map[string]web.ReadinessCheck{"database": db.Ready(pool)})
	Routes(r, core)
	StaffRoutes(r, NewStaff(store, events, users, cfg.StatsInterval))
	TransferRoutes(r, NewTransfers(core, users))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return web.Serve(ctx, log, "ticket", ln, r) })
	// Kafka is not needed to serve: purchases only write the outbox. The relay and the
	// consumer start once the topics exist and retry for as long as Kafka is away.
	g.Go(func() error {
		if cfg.CreateTopics {
			topics := []string{cancelledTopic}
			for _, t := range Topics {
				topics = append(topics, cfg.TopicPrefix+t)
			}
			if !ensureTopics(ctx, log, cfg, topics) {
				return nil
			}
		}
		kafkaGroup, ctx := errgroup.WithContext(ctx)
		kafkaGroup.Go(func() error { return relay.Run(ctx) })
		kafkaGroup.Go(func() error { return consumer.Run(ctx) })
		return kafkaGroup.Wait()
	})
	g.Go(func() error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := store.PruneIdempotency(ctx, idempotencyRetention); err != nil {
					log.Warn("prune idempotency keys failed", "err", err)
				}
			}
		}
	})
	return g.Wait()
}

// ensureTopics creates topics, retrying until Kafka answers; false means ctx ended first.
func ensureTopics(ctx context.Context, log *slog.Logger, cfg Config, topics []string) bool {
	partitions, replication := cfg.Partitions, cfg.ReplicationFactor
	if partitions <= 0 {
		partitions = 3
	}
	if replication <= 0 {
		replication = 1
	}
	backoff := 200 * time.Millisecond
	for {
		err := kafkabus.EnsureTopics(ctx, cfg.KafkaBrokers, topics, partitions, replication)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("creating Kafka topics failed; retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
