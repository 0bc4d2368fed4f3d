package app

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is every setting of every target, read from the environment. The README's
// configuration table lists the same variables; keep them in step.
type Config struct {
	LogLevel  string `env:"SBOR_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"SBOR_LOG_FORMAT" envDefault:"json"`
	// HTTPAddr is the public listener of a single target; in `sbor all` it is the gateway's
	// (default 127.0.0.1:8080) and the services listen on free loopback ports.
	HTTPAddr string `env:"SBOR_HTTP_ADDR"`
	// MetricsAddr serves Prometheus /metrics; "off" disables it.
	MetricsAddr string `env:"SBOR_METRICS_ADDR" envDefault:":9090"`

	UserDatabaseURL         string `env:"SBOR_USER_DATABASE_URL"`
	EventDatabaseURL        string `env:"SBOR_EVENT_DATABASE_URL"`
	TicketDatabaseURL       string `env:"SBOR_TICKET_DATABASE_URL"`
	NotificationDatabaseURL string `env:"SBOR_NOTIFICATION_DATABASE_URL"`
	// PostgresURL is a server-level URL; `sbor all` creates one database per service there
	// when the per-service URLs are not set.
	PostgresURL string `env:"SBOR_POSTGRES_URL"`
	// DevPostgresDir makes `sbor all` run a PostgreSQL of its own from the machine's server
	// binaries, with its data in this directory (make dev sets .dev/postgres).
	DevPostgresDir string `env:"SBOR_DEV_POSTGRES_DIR"`
	DBMaxConns     int32  `env:"SBOR_DB_MAX_CONNS" envDefault:"0"`
	MigrateOnStart bool   `env:"SBOR_MIGRATE_ON_START" envDefault:"true"`

	// KafkaBrokers lists the bootstrap brokers; `sbor all` embeds a broker when it is empty.
	KafkaBrokers string `env:"KAFKA_BROKERS"`
	// DevKafkaDir keeps the embedded broker's data between runs of `sbor all`.
	DevKafkaDir string `env:"SBOR_DEV_KAFKA_DIR"`
	// KafkaTopicPrefix is prepended to every topic name, so several platforms (or test runs)
	// can share one cluster.
	KafkaTopicPrefix string `env:"SBOR_KAFKA_TOPIC_PREFIX"`
	// KafkaCreateTopics makes the services create missing topics at start (off when the
	// operator or Strimzi manages them).
	KafkaCreateTopics      bool `env:"SBOR_KAFKA_CREATE_TOPICS" envDefault:"true"`
	KafkaPartitions        int  `env:"SBOR_KAFKA_PARTITIONS" envDefault:"3"`
	KafkaReplicationFactor int  `env:"SBOR_KAFKA_REPLICATION_FACTOR" envDefault:"1"`

	JWTPrivateKeyFile string        `env:"SBOR_JWT_PRIVATE_KEY_FILE"`
	JWTIssuer         string        `env:"SBOR_JWT_ISSUER" envDefault:"sbor-user"`
	JWTAudience       string        `env:"SBOR_JWT_AUDIENCE" envDefault:"sbor-api"`
	AccessTokenTTL    time.Duration `env:"SBOR_ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshTokenTTL   time.Duration `env:"SBOR_REFRESH_TOKEN_TTL" envDefault:"720h"`
	LoginWindow       time.Duration `env:"SBOR_LOGIN_WINDOW" envDefault:"15m"`
	LoginMaxPerIP     int           `env:"SBOR_LOGIN_MAX_PER_IP" envDefault:"100"`
	LoginMaxPerAcct   int           `env:"SBOR_LOGIN_MAX_PER_ACCOUNT" envDefault:"10"`

	// ReminderLead is how long before an event's start its reminder goes out.
	ReminderLead time.Duration `env:"SBOR_REMINDER_LEAD" envDefault:"24h"`
	// ReminderInterval is the period of the event service's own reminder loop; 0 turns it
	// off, for when the operator schedules reminders with CronJobs.
	ReminderInterval time.Duration `env:"SBOR_REMINDER_INTERVAL" envDefault:"1m"`

	// The ticket service's purchase path (see package ticket); zero values take its defaults.
	TicketEventStatusTTL  time.Duration `env:"SBOR_TICKET_EVENT_STATUS_TTL"`
	TicketBatchSize       int           `env:"SBOR_TICKET_BATCH_SIZE"`
	TicketBatchWait       time.Duration `env:"SBOR_TICKET_BATCH_WAIT"`
	TicketBatchesInFlight int           `env:"SBOR_TICKET_BATCHES_IN_FLIGHT"`
	// TicketStatsInterval is how old an event's live counts may get before they are re-read.
	TicketStatsInterval time.Duration `env:"SBOR_TICKET_STATS_INTERVAL"`

	UserURL         string `env:"SBOR_USER_URL"`
	EventURL        string `env:"SBOR_EVENT_URL"`
	TicketURL       string `env:"SBOR_TICKET_URL"`
	NotificationURL string `env:"SBOR_NOTIFICATION_URL"`
	// JWKSURL defaults to the user service's /internal/jwks.
	JWKSURL        string   `env:"SBOR_JWKS_URL"`
	CORSOrigins    []string `env:"SBOR_CORS_ALLOWED_ORIGINS" envSeparator:","`
	TrustedProxies []string `env:"SBOR_TRUSTED_PROXIES" envSeparator:","`
	MaxBodyBytes   int64    `env:"SBOR_MAX_BODY_BYTES" envDefault:"1048576"`

	Operator OperatorConfig
}

// LoadConfig reads the environment.
func LoadConfig() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

func (c Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("SBOR_TRUSTED_PROXIES: %q is neither an address nor a CIDR", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}
