package app

import (
	"context"
	"log/slog"
	"net"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/services/event"
	"github.com/sbor-dev/sbor/services/notification"
	"github.com/sbor-dev/sbor/services/ticket"
)

func (c Config) brokers() []string { return kafkabus.SplitBrokers(c.KafkaBrokers) }

func runEvent(ctx context.Context, log *slog.Logger, c Config, ln net.Listener) error {
	if err := require("SBOR_EVENT_DATABASE_URL", c.EventDatabaseURL); err != nil {
		return err
	}
	return event.Run(ctx, log, event.Config{
		DatabaseURL: c.EventDatabaseURL, MaxConns: c.DBMaxConns, Migrate: c.MigrateOnStart,
		KafkaBrokers: c.brokers(), TopicPrefix: c.KafkaTopicPrefix, CreateTopics: c.KafkaCreateTopics,
		Partitions: c.KafkaPartitions, ReplicationFactor: c.KafkaReplicationFactor,
		ReminderLead: c.ReminderLead, ReminderInterval: c.ReminderInterval,
	}, ln)
}

func runTicket(ctx context.Context, log *slog.Logger, c Config, ln net.Listener) error {
	if err := require("SBOR_TICKET_DATABASE_URL", c.TicketDatabaseURL); err != nil {
		return err
	}
	if err := require("SBOR_EVENT_URL", c.EventURL); err != nil {
		return err
	}
	return ticket.Run(ctx, log, ticket.Config{
		DatabaseURL: c.TicketDatabaseURL, MaxConns: c.DBMaxConns, Migrate: c.MigrateOnStart,
		EventURL: c.EventURL, KafkaBrokers: c.brokers(), TopicPrefix: c.KafkaTopicPrefix,
		UserURL:      c.UserURL,
		CreateTopics: c.KafkaCreateTopics, Partitions: c.KafkaPartitions, ReplicationFactor: c.KafkaReplicationFactor,
		Purchase: ticket.Options{
			EventStatusTTL: c.TicketEventStatusTTL, BatchSize: c.TicketBatchSize,
			BatchWait: c.TicketBatchWait, BatchesInFlight: c.TicketBatchesInFlight,
		},
		StatsInterval: c.TicketStatsInterval,
	}, ln)
}

func runNotification(ctx context.Context, log *slog.Logger, c Config, ln net.Listener) error {
	if err := require("SBOR_NOTIFICATION_DATABASE_URL", c.NotificationDatabaseURL); err != nil {
		return err
	}
	if err := require("SBOR_TICKET_URL", c.TicketURL); err != nil {
		return err
	}
	return notification.Run(ctx, log, notification.Config{
		DatabaseURL: c.NotificationDatabaseURL, MaxConns: c.DBMaxConns, Migrate: c.MigrateOnStart,
		TicketURL: c.TicketURL, KafkaBrokers: c.brokers(), TopicPrefix: c.KafkaTopicPrefix,
	}, ln)
}

// migrationSets lists each service's database URL and schema, for `sbor migrate`.
func (c Config) migrationSets() map[string]struct {
	url  string
	sets []db.Migrations
} {
	return map[string]struct {
		url  string
		sets []db.Migrations
	}{
		"user":         {c.UserDatabaseURL, nil},
		"event":        {c.EventDatabaseURL, event.Migrations()},
		"ticket":       {c.TicketDatabaseURL, ticket.Migrations()},
		"notification": {c.NotificationDatabaseURL, notification.Migrations()},
	}
}
