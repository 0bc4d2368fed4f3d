package event

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the event service's schema and its outbox.
func Migrations() []db.Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations")
	return []db.Migrations{{Table: "goose_event_version", FS: sub}, outbox.Migrations()}
}

// DefaultReminderLead is how long before an event's start its reminder goes out.
const DefaultReminderLead = 24 * time.Hour

// Config configures the event service.
type Config struct {
	DatabaseURL string
	MaxConns    int32
	Migrate     bool

	// KafkaBrokers receive the outbox; when empty, messages wait in the outbox.
	KafkaBrokers []string
	// TopicPrefix is prepended to every topic name.
	TopicPrefix string
	// CreateTopics creates this service's topics at start (off when the operator or Strimzi
	// manages them); Partitions and ReplicationFactor are theirs (0: 3 and 1).
	CreateTopics      bool
	Partitions        int
	ReplicationFactor int

	// ReminderLead is how long before the start the reminder is sent (0: 24h).
	ReminderLead time.Duration
	// ReminderInterval is the period of the reminder loop; 0 disables it, for when the
	// operator schedules reminders.
	ReminderInterval time.Duration
}

// Run serves the event service on ln until ctx ends. The HTTP API serves whether or not
// Kafka is reachable: the outbox relay retries in the background.
func Run(ctx context.Context, log *slog.Logger, cfg Config, ln net.Listener) error {
	log = log.With("component", "event")
	pool, err := db.Open(ctx, cfg.DatabaseURL, cfg.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer db.RegisterPoolMetrics("event", pool)()
	if cfg.Migrate {
		if err := db.Migrate(ctx, pool, Migrations()...); err != nil {
			return err
		}
	}
	core := NewCore(NewStore(pool))

	r := web.NewRouter(log, web.Service("event"))
	web.MountHealth(r, map[string]web.ReadinessCheck{"database": db.Ready(pool)})
	Routes(r, core)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return web.Serve(ctx, log, "event", ln, r) })

	if len(cfg.KafkaBrokers) > 0 {
		writer := kafkabus.NewWriter(cfg.KafkaBrokers)
		defer writer.Close()
		relay := &outbox.Relay{Pool: pool, Publisher: writer, Log: log, Service: "event", TopicPrefix: cfg.TopicPrefix}
		g.Go(func() error {
			if cfg.CreateTopics {
				ensureTopics(ctx, log, cfg)
			}
			return relay.Run(ctx)
		})
	} else {
		log.Warn("no Kafka brokers configured: event messages stay in the outbox until a relay with brokers runs")
	}

	if cfg.ReminderInterval > 0 {
		lead := cfg.ReminderLead
		if lead <= 0 {
			lead = DefaultReminderLead
		}
		g.Go(func() error {
			core.RunReminders(ctx, log, lead, cfg.ReminderInterval)
			return nil
		})
	}
	return g.Wait()
}

// ensureTopics creates this service's topics, retrying until Kafka answers or ctx ends;
// until then the relay has nowhere to publish, so it waits.
func ensureTopics(ctx context.Context, log *slog.Logger, cfg Config) {
	partitions, replication := cfg.Partitions, cfg.ReplicationFactor
	if partitions <= 0 {
		partitions = 3
	}
	if replication <= 0 {
		replication = 1
	}
	topics := make([]string, len(Topics))
	for i, t := range Topics {
		topics[i] = cfg.TopicPrefix + t
	}
	backoff := 200 * time.Millisecond
	for {
		err := kafkabus.EnsureTopics(ctx, cfg.KafkaBrokers, topics, partitions, replication)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("creating Kafka topics failed; retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
