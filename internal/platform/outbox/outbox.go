// Package outbox is the transactional outbox: a service writes the messages a state change
// must announce into its own database, in the same transaction as the change, and a Relay
// publishes them to Kafka afterwards, in commit order, at least once.
//
// A committed change is therefore never without its message, and a Kafka outage delays
// messages instead of failing requests. Consumers must be idempotent.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the outbox schema, with its own version table, for db.Migrate.
func Migrations() db.Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations")
	return db.Migrations{Table: "goose_outbox_version", FS: sub}
}

// Message is one record to publish.
type Message struct {
	Topic   string
	Key     string
	Payload []byte
	Headers map[string]string
}

// FromEvent makes the message for a CloudEvent on the topic named by its type, keyed by key.
func FromEvent(key string, ev cloudevent.Event, headers map[string]string) (Message, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return Message{}, fmt.Errorf("marshal cloudevent: %w", err)
	}
	return Message{Topic: ev.Type, Key: key, Payload: payload, Headers: headers}, nil
}

// Add inserts messages in tx with one statement.
func Add(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	topics := make([]string, len(msgs))
	keys := make([]string, len(msgs))
	payloads := make([][]byte, len(msgs))
	headers := make([]string, len(msgs))
	for i, m := range msgs {
		topics[i], keys[i], payloads[i] = m.Topic, m.Key, m.Payload
		h := m.Headers
		if h == nil {
			h = map[string]string{}
		}
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		headers[i] = string(b)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO outbox (topic, key, payload, headers)
		SELECT t, k, p, h FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[]) WITH ORDINALITY AS m(t, k, p, h, n)
		ORDER BY n`, topics, keys, payloads, headers)
	if err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}
