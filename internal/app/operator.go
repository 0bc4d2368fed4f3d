package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sbor-dev/sbor/internal/platform/tracing"
	"github.com/sbor-dev/sbor/operator"
)

// OperatorConfig is the operator's part of the environment.
type OperatorConfig struct {
	Namespace              string            `env:"SBOR_OPERATOR_NAMESPACE"`
	LeaderElection         bool              `env:"SBOR_OPERATOR_LEADER_ELECTION" envDefault:"true"`
	ReminderImage          string            `env:"SBOR_OPERATOR_REMINDER_IMAGE"`
	ReminderPullPolicy     string            `env:"SBOR_OPERATOR_REMINDER_PULL_POLICY" envDefault:"IfNotPresent"`
	ReminderServiceAccount string            `env:"SBOR_OPERATOR_REMINDER_SERVICE_ACCOUNT"`
	ReminderLabels         map[string]string `env:"SBOR_OPERATOR_REMINDER_LABELS" envSeparator:"," envKeyValSeparator:"="`
	ReminderLead           time.Duration     `env:"SBOR_OPERATOR_REMINDER_LEAD" envDefault:"24h"`
	ManageTopics           bool              `env:"SBOR_OPERATOR_MANAGE_TOPICS" envDefault:"true"`
	StrimziCluster         string            `env:"SBOR_OPERATOR_STRIMZI_CLUSTER" envDefault:"sbor"`
	ConsumerGroup          string            `env:"SBOR_OPERATOR_CONSUMER_GROUP"`
}

// runOperator runs the operator's manager. It has no HTTP API of its own: SBOR_HTTP_ADDR
// serves its health probes and SBOR_METRICS_ADDR its metrics, as for every target.
func runOperator(ctx context.Context, log *slog.Logger, c Config) error {
	o := c.Operator
	health := c.HTTPAddr
	if health == "" {
		health = singleTargetAddr
	}
	metrics := c.MetricsAddr
	if metrics == "off" {
		metrics = "0"
	}
	return operator.Run(ctx, log, operator.Config{
		Namespace: o.Namespace, LeaderElection: o.LeaderElection,
		MetricsAddr: metrics, HealthProbeAddr: health,
		KafkaBrokers: c.brokers(), TopicPrefix: c.KafkaTopicPrefix, ConsumerGroup: o.ConsumerGroup,
		EventServiceURL: c.EventURL, ReminderImage: o.ReminderImage,
		ReminderImagePullPolicy: corev1.PullPolicy(o.ReminderPullPolicy),
		ReminderServiceAccount:  o.ReminderServiceAccount, ReminderPodLabels: o.ReminderLabels,
		ReminderLead: o.ReminderLead, DisableTopics: !o.ManageTopics,
		TopicPartitions: c.KafkaPartitions, TopicReplicationFactor: c.KafkaReplicationFactor,
		StrimziCluster: o.StrimziCluster,
	})
}

// Remind is `sbor remind --event ID`, what a reminder CronJob's Job runs: it asks the event
// service (SBOR_EVENT_URL) to send the event's reminder, retrying, and fails so that the
// Job's backoff retries it.
func Remind(ctx context.Context, log *slog.Logger, c Config, args []string) error {
	fs := flag.NewFlagSet("remind", flag.ContinueOnError)
	eventID := fs.String("event", "", "the event's id")
	attempts := fs.Int("attempts", envInt("SBOR_REMIND_ATTEMPTS", 5), "tries before giving up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *eventID == "" {
		return errors.New("usage: sbor remind --event ID")
	}
	if c.EventURL == "" {
		return errors.New("SBOR_EVENT_URL must be set")
	}
	stopTracing, err := tracing.Setup(ctx, "sbor-remind", tracing.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	if err := operator.Remind(ctx, strings.TrimSuffix(c.EventURL, "/"), *eventID, *attempts); err != nil {
		return err
	}
	log.Info("reminder requested", "event", *eventID)
	return nil
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscanf(os.Getenv(name), "%d", &n); err == nil && n > 0 {
		return n
	}
	return def
}
