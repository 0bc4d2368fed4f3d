package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
)

// typeCheck is the consistency check of one ticket type after the runs.
type typeCheck struct {
	Name     string `json:"name"`
	TypeID   string `json:"type_id"`
	Quantity int    `json:"quantity"`
	// Issued counts the distinct tickets answered 201; Duplicates, ticket ids answered twice.
	Issued     int `json:"issued"`
	Duplicates int `json:"duplicate_ids"`
	// Sold is the counter as GET /api/events/{id}/ticket-types shows it.
	Sold int `json:"sold"`
	// Rows counts the type's tickets in the ticket service's database.
	Rows int `json:"rows"`
	// Messages counts the distinct tickets of ticket.purchased messages on Kafka; Redelivered
	// counts messages beyond the first per ticket (at-least-once delivery allows them).
	Messages    int  `json:"messages"`
	Redelivered int  `json:"redelivered"`
	Oversold    int  `json:"oversold"`
	OK          bool `json:"ok"`
}

func (c *typeCheck) evaluate() {
	c.Oversold = max(0, max(c.Issued, c.Sold, c.Rows, c.Messages)-c.Quantity)
	c.OK = c.Oversold == 0 && c.Duplicates == 0 && c.Issued == c.Sold && c.Sold == c.Rows && c.Rows == c.Messages
}

// countMessages reads the ticket.purchased topic from the start until every type in want has
// as many distinct tickets as expected, or nothing new arrives for idle, or timeout passes. It
// returns the distinct tickets and the redeliveries per type.
func countMessages(ctx context.Context, brokers []string, topic string, want map[string]int, idle, timeout time.Duration) (distinct, redelivered map[string]int, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	seen := map[string]bool{}
	distinct, redelivered = map[string]int{}, map[string]int{}
	done := func() bool {
		for typeID, n := range want {
			if distinct[typeID] < n {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(timeout)
	lastProgress := time.Now()
	for !done() && time.Now().Before(deadline) && time.Since(lastProgress) < idle {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return distinct, redelivered, ctx.Err()
		}
		fetches.EachRecord(func(r *kgo.Record) {
			ev, err := cloudevent.Decode(r.Value)
			if err != nil {
				return
			}
			var d cloudevent.TicketData
			if ev.DecodeData(&d) != nil {
				return
			}
			typeID, id := d.TicketTypeID.String(), d.TicketID.String()
			if seen[id] {
				redelivered[typeID]++
				return
			}
			seen[id] = true
			distinct[typeID]++
			lastProgress = time.Now()
		})
	}
	return distinct, redelivered, nil
}

// ticketRows counts a type's tickets in the ticket service's database.
func ticketRows(ctx context.Context, url, typeID string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM tickets WHERE ticket_type_id = $1`, typeID).Scan(&n)
	return n, err
}

// delays is the purchase → notification delay of one run's tickets.
// A ticket whose notification had not appeared when the wait ended counts with the delay
// until then, a lower bound: with any missing, the percentiles are lower bounds too
// (AtLeast).
type delays struct {
	Run     string  `json:"run"`
	Tickets int     `json:"tickets"`
	Missing int     `json:"missing"`
	AtLeast bool    `json:"at_least"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// notificationDelays waits until every ticket bought in run has its "ticket purchased"
// notification (or timeout passes) and measures the time from the ticket's purchased_at to
// the notification's created_at: outbox, relay, Kafka, the notification service's consumer
// and its database. Both times are taken on this machine's clock.
func notificationDelays(ctx context.Context, url string, bought map[string]boughtTicket, run string, timeout time.Duration) (delays, error) {
	d := delays{Run: run}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return d, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var ids []string
	for id, t := range bought {
		if t.Run == run {
			ids = append(ids, id)
		}
	}
	d.Tickets = len(ids)
	deadline := time.Now().Add(timeout)
	waitEnd := deadline
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE type = 'ticket.purchased' AND ticket_id = ANY($1::uuid[])`, ids).Scan(&n); err != nil {
			return d, err
		}
		if n >= len(ids) || time.Now().After(deadline) {
			waitEnd = time.Now()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	created := map[string]time.Time{}
	rows, err := conn.Query(ctx, `SELECT ticket_id::text, min(created_at) FROM notifications
		WHERE type = 'ticket.purchased' AND ticket_id = ANY($1::uuid[]) GROUP BY ticket_id`, ids)
	if err != nil {
		return d, err
	}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return d, err
		}
		created[id] = at
	}
	if err := rows.Err(); err != nil {
		return d, err
	}
	lat := make([]time.Duration, 0, len(ids))
	for _, id := range ids {
		at, ok := created[id]
		if !ok {
			d.Missing++
			d.AtLeast = true
			at = waitEnd
		}
		lat = append(lat, max(0, at.Sub(bought[id].PurchasedAt)))
	}
	slices.Sort(lat)
	d.P50Ms, d.P99Ms = percentileMs(lat, 50), percentileMs(lat, 99)
	if len(lat) > 0 {
		d.MaxMs = ms(lat[len(lat)-1])
	}
	return d, nil
}

// checkNotificationsThroughAPI confirms, for a few buyers, that GET /api/notifications lists
// a notification for each of their tickets: the delays above are what a user sees.
func checkNotificationsThroughAPI(ctx context.Context, c *client, gateway string, buyers []user, bought map[string]boughtTicket, sample int) error {
	for i := 0; i < len(buyers) && i < sample; i++ {
		list, err := c.notifications(ctx, gateway, buyers[i])
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, n := range list {
			if n.Type == "ticket.purchased" && n.TicketID != nil {
				have[*n.TicketID] = true
			}
		}
		for id, t := range bought {
			if t.UserIndex == i && !have[id] {
				return fmt.Errorf("buyer %d: no notification for ticket %s in GET /api/notifications", i, id)
			}
		}
	}
	return nil
}

// relayLag is how long the ticket service's ticket.purchased outbox rows waited for the
// relay to publish them (created_at → published_at): the first leg of the notification delay.
type relayLag struct {
	Published int     `json:"published"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
}

func outboxLag(ctx context.Context, url string) (relayLag, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return relayLag{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var l relayLag
	var p50, p99, mx *float64
	err = conn.QueryRow(ctx, `
		SELECT count(*),
		       percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), percentile_disc(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
		FROM (SELECT extract(epoch FROM published_at - created_at) * 1000 AS ms FROM outbox
		      WHERE topic = 'ticket.purchased' AND published_at IS NOT NULL) lag`).Scan(&l.Published, &p50, &p99, &mx)
	if p50 != nil {
		l.P50Ms, l.P99Ms, l.MaxMs = round(*p50, 1), round(*p99, 1), round(*mx, 1)
	}
	return l, err
}
