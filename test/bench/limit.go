package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/services/ticket"
)

// errLimitSoldOut ends a limit worker: the direct-SQL type ran out (it never should: its
// quantity is the maximum).
var errLimitSoldOut = errors.New("limit type sold out")

// runLimit measures what the database allows for the purchase the way a service without
// grouping would do it: one transaction per ticket — the counter update guarded by
// sold < quantity, the ticket insert, the outbox insert, commit — from clients connections
// at once, on the same PostgreSQL server and the ticket service's own schema.
func runLimit(ctx context.Context, url string, clients int, duration time.Duration) (stats, error) {
	pool, err := db.Open(ctx, url, int32(clients))
	if err != nil {
		return stats{}, err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, ticket.Migrations()...); err != nil {
		return stats{}, err
	}
	typeID, eventID, organizerID := uuid.New(), uuid.New(), uuid.New()
	if _, err := pool.Exec(ctx, `
		INSERT INTO ticket_types (id, event_id, organizer_id, event_title, type, price_cents, currency, quantity, sales_start, sales_end)
		VALUES ($1, $2, $3, 'Limit', 'standard', 4900, 'EUR', $4, now() - interval '1 minute', now() + interval '1 day')`,
		typeID, eventID, organizerID, ticket.MaxQuantity); err != nil {
		return stats{}, err
	}
	// Open every connection before the clock starts.
	conns := make([]*pgxpool.Conn, clients)
	for i := range conns {
		if conns[i], err = pool.Acquire(ctx); err != nil {
			return stats{}, err
		}
	}
	for _, c := range conns {
		c.Release()
	}
	var failure firstError
	s := closedLoop(ctx, "direct SQL, one transaction per ticket", clients, duration, 0, func(ctx context.Context, _ int, _ int64) outcome {
		err := limitPurchase(ctx, pool, typeID, eventID, organizerID)
		switch {
		case err == nil:
			return outcome{ok: true, status: 201}
		case ctx.Err() != nil:
			return outcome{}
		case errors.Is(err, errLimitSoldOut):
			return outcome{status: 409, code: "sold_out"}
		default:
			failure.set(err)
			return outcome{status: 500, code: "sql_error"}
		}
	})
	if err := failure.get(); err != nil {
		return s, fmt.Errorf("direct SQL: %w", err)
	}
	return s, nil
}

func limitPurchase(ctx context.Context, pool *pgxpool.Pool, typeID, eventID, organizerID uuid.UUID) error {
	id, _ := uuid.NewV7()
	userID := uuid.New()
	at := time.Now().UTC().Truncate(time.Microsecond)
	ev, err := cloudevent.New(ticket.Source, cloudevent.TypeTicketPurchased, id.String(), at, cloudevent.TicketData{
		TicketID: id, EventID: eventID, TicketTypeID: typeID, UserID: userID,
		EventTitle: "Limit", TicketType: "standard", PurchasedAt: at,
	})
	if err != nil {
		return err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE ticket_types SET sold = sold + 1 WHERE id = $1 AND sold < quantity`, typeID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return errLimitSoldOut
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)`, id, ticket.NewCode(), eventID, typeID, userID, organizerID, at); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)`,
			cloudevent.TypeTicketPurchased, eventID.String(), payload)
		return err
	})
}
