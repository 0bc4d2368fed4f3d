package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
)

var (
	backlogGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sbor_outbox_backlog", Help: "Outbox messages not yet published to Kafka.",
	}, []string{"service"})
	publishLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sbor_outbox_publish_latency_seconds", Help: "Time from a message's commit to its acknowledgement by Kafka.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"service"})
	publishedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_outbox_published_total", Help: "Outbox messages published to Kafka.",
	}, []string{"service"})
	publishErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_outbox_publish_errors_total", Help: "Failed attempts to publish an outbox batch.",
	}, []string{"service"})
	publishBatchSize = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sbor_outbox_publish_batch_size", Help: "Messages published to Kafka in one relay transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 500},
	}, []string{"service"})
)

// Publisher is what the relay needs of a Kafka writer.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Relay publishes a service's outbox to Kafka.
//
// One relay at a time holds the outbox's advisory lock, so several replicas never publish the
// same batch twice or reorder a key's messages; the others stand by and take over when it
// goes away.
//
// Every committed transaction that wrote outbox rows notifies the relay. Notifications that
// arrive while it reads or publishes are coalesced into one more read, and reads are at least
// MinInterval apart: under load the relay publishes many transactions' rows in one
// transaction and one Kafka request, where it would otherwise pay both for every commit; an
// idle relay still publishes a lone message as soon as it is notified. Marking rows published
// is committed without waiting for the disk flush: a crash can only lose the mark, and a
// message published twice is what consumers already expect (at least once).
type Relay struct {
	Pool      *pgxpool.Pool
	Publisher Publisher
	Log       *slog.Logger
	// Service labels the metrics.
	Service string
	// PollInterval bounds how long a message can wait if a notification is missed.
	PollInterval time.Duration
	// MinInterval is the shortest time between two reads of the outbox (DefaultMinInterval
	// when 0; negative: none).
	MinInterval time.Duration
	BatchSize   int
	// Retention is how long published rows are kept for inspection before they are deleted.
	Retention time.Duration
	// TopicPrefix is prepended to every topic (SBOR_KAFKA_TOPIC_PREFIX), so several platforms
	// or test runs can share one Kafka cluster.
	TopicPrefix string
}

// lockID is the advisory lock that elects the active relay of one database.
const lockID int64 = 0x5b0a_0417

// DefaultMinInterval is the shortest time between two reads of the outbox: what a message
// committed right after a read may wait for the next one, under load. No request waits for
// the relay, so it is spent on larger batches: every read is a transaction here and a Kafka
// request there, and each consumer's fetch follows it. At 25 ms rather than 10 (with the
// notification consumer's 25 ms batch wait), the flash-sale benchmark at half the peak rate
// found the machine 84-88 % busy instead of 89-94 % and Kafka's CPU per purchase 0.26-0.34 ms
// instead of 0.32-0.37; purchase → notification p99 rose from 148-223 ms to 187-263.
const DefaultMinInterval = 25 * time.Millisecond

// pendingRetry is how soon the relay looks again for rows it could not read yet.
const pendingRetry = 20 * time.Millisecond

// Run publishes until ctx is cancelled.
func (r *Relay) Run(ctx context.Context) error {
	if r.PollInterval == 0 {
		r.PollInterval = time.Second
	}
	if r.BatchSize == 0 {
		r.BatchSize = 500
	}
	if r.Retention == 0 {
		r.Retention = time.Hour
	}
	if r.MinInterval == 0 {
		r.MinInterval = DefaultMinInterval
	}
	// The error series exists from the start, so a rate over it is 0 rather than absent.
	publishErrors.WithLabelValues(r.Service)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.listenAndPublish(ctx)
		if ctx.Err() != nil {
			return nil
		}
		r.Log.Warn("outbox relay interrupted; retrying", "service", r.Service, "err", err, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (r *Relay) listenAndPublish(ctx context.Context) error {
	// The listening connection is the relay's own, not one of the pool's: it is held for as
	// long as the relay runs, and taken from the pool it left the service's requests one
	// connection fewer than the pool's size (with a pool of four, pgx's default on a two-core
	// machine, a quarter of them: the flash-sale benchmark's GET rounds queued for the other
	// three with the CPU 8-10 % idle).
	conn, err := pgx.ConnectConfig(ctx, r.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN sbor_outbox"); err != nil {
		return err
	}
	// The listening connection only waits; the relay reads and publishes on connections of
	// the pool, so notifications keep arriving meanwhile. Each one fills wake if it is
	// empty: a burst of commits during a read costs one more read, not one each.
	listenCtx, stopListening := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	listenDone := make(chan struct{})
	var listenErr error
	go func() {
		defer close(listenDone)
		for {
			if _, err := conn.WaitForNotification(listenCtx); err != nil {
				listenErr = err
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		stopListening()
		<-listenDone
	}()

	var lastRead, lastHousekeeping time.Time
	for {
		if wait := r.MinInterval - time.Since(lastRead); wait > 0 && !sleep(ctx, wait) {
			return nil
		}
		lastRead = time.Now()
		pending, err := r.drain(ctx)
		if err != nil {
			return err
		}
		if time.Since(lastHousekeeping) > 5*time.Second {
			if err := r.housekeeping(ctx); err != nil {
				return err
			}
			lastHousekeeping = time.Now()
		}
		// Rows of a transaction that committed while an older one is still running are not
		// safe to read yet; look again soon instead of waiting for the next notification.
		wait := r.PollInterval
		if pending {
			wait = pendingRetry
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-listenDone:
			timer.Stop()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("wait for notification: %w", listenErr)
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// drain publishes batches until none is left; pending reports unpublished rows it could not
// read yet (or that another replica owns).
func (r *Relay) drain(ctx context.Context) (pending bool, err error) {
	for {
		full, pending, err := r.publishBatch(ctx)
		if err != nil {
			publishErrors.WithLabelValues(r.Service).Inc()
			return false, err
		}
		if !full {
			return pending, nil
		}
	}
}

type outboxRow struct {
	id        int64
	topic     string
	key       string
	payload   []byte
	headers   []byte
	createdAt time.Time
}

// publishBatch publishes the oldest readable rows, at most BatchSize, in one transaction.
// full reports a full batch: more rows may be readable at once. After a batch that was not
// full, pending reports unpublished rows that remain: not readable yet, or owned by the relay
// of another replica.
func (r *Relay) publishBatch(ctx context.Context) (full, pending bool, err error) {
	var partialErr error
	defer func() {
		if err == nil {
			err = partialErr
		}
	}()
	err = pgx.BeginFunc(ctx, r.Pool, func(tx pgx.Tx) error {
		// Only the mark "published" is written here; losing it in a crash republishes the
		// rows, which consumers dedupe. So the commit need not wait for the disk.
		var leader bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1), set_config('synchronous_commit', 'off', true)", lockID).Scan(&leader, nil); err != nil {
			return err
		}
		if !leader {
			pending = true
			return nil
		}
		rows, err := tx.Query(ctx, `
			SELECT id, topic, key, payload, headers::text, created_at FROM outbox
			WHERE published_at IS NULL AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY transaction_id, id LIMIT $1`, r.BatchSize)
		if err != nil {
			return err
		}
		batch, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (outboxRow, error) {
			var x outboxRow
			var headers string
			err := cr.Scan(&x.id, &x.topic, &x.key, &x.payload, &headers, &x.createdAt)
			x.headers = []byte(headers)
			return x, err
		})
		if err != nil {
			return err
		}
		full = len(batch) == r.BatchSize
		if len(batch) == 0 {
			return tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)").Scan(&pending)
		}
		msgs := make([]kafka.Message, len(batch))
		ids := make([]int64, len(batch))
		for i, x := range batch {
			ids[i] = x.id
			msgs[i] = kafka.Message{Topic: r.TopicPrefix + x.topic, Key: []byte(x.key), Value: x.payload}
			var hs map[string]string
			if err := json.Unmarshal(x.headers, &hs); err == nil {
				for k, v := range hs {
					msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: k, Value: []byte(v)})
				}
			}
			if _, ok := hs["traceparent"]; !ok {
				msgs[i].Headers = appendEventTraceContext(msgs[i].Headers, x.payload)
			}
		}
		publishErr := r.Publisher.WriteMessages(ctx, msgs...)
		// kafka-go reports per-message failures (a partition whose leader moved, say): keep
		// what was acknowledged, so only the failed messages are sent again. One key's
		// messages share a partition, so they fail or succeed together and stay in order.
		var writeErrs kafka.WriteErrors
		if publishErr != nil {
			if !errors.As(publishErr, &writeErrs) || len(writeErrs) != len(msgs) {
				return fmt.Errorf("publish %d messages: %w", len(msgs), publishErr)
			}
			acked := ids[:0:0]
			for i, e := range writeErrs {
				if e == nil {
					acked = append(acked, ids[i])
				}
			}
			ids = acked
		}
		if _, err := tx.Exec(ctx, "UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1)", ids); err != nil {
			return err
		}
		publishBatchSize.WithLabelValues(r.Service).Observe(float64(len(ids)))
		now := time.Now()
		for i, x := range batch {
			if writeErrs == nil || writeErrs[i] == nil {
				publishLatency.WithLabelValues(r.Service).Observe(now.Sub(x.createdAt).Seconds())
			}
		}
		publishedTotal.WithLabelValues(r.Service).Add(float64(len(ids)))
		if publishErr != nil {
			// Commit what was acknowledged, then report the rest so the relay backs off.
			partialErr = fmt.Errorf("publish: %d of %d messages failed: %w", len(batch)-len(ids), len(batch), publishErr)
			return nil
		}
		if full {
			return nil
		}
		// Rows committed since the read (they notified: another read follows) or not
		// readable yet.
		return tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)").Scan(&pending)
	})
	return full, pending, err
}

func (r *Relay) housekeeping(ctx context.Context) error {
	var backlog int64
	if err := r.Pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE published_at IS NULL").Scan(&backlog); err != nil {
		return err
	}
	backlogGauge.WithLabelValues(r.Service).Set(float64(backlog))
	// Rows are kept for Retention after they were written. Ids grow with time, so the old
	// rows are a prefix of the primary key: find where it ends, walking the key from its
	// start (only over the rows about to go), and delete the published rows before it. A
	// condition on the times alone would read the whole table every time.
	_, err := r.Pool.Exec(ctx, `
		DELETE FROM outbox
		WHERE published_at IS NOT NULL AND id < coalesce(
			(SELECT id FROM outbox WHERE created_at >= now() - make_interval(secs => $1) ORDER BY id LIMIT 1),
			(SELECT max(id) + 1 FROM outbox))`, r.Retention.Seconds())
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// traceparentAttr is how a CloudEvent's distributed-tracing extension shows in its JSON.
var traceparentAttr = []byte(`"traceparent"`)

// appendEventTraceContext adds the trace context a CloudEvent payload carries in its
// distributed-tracing extension (written by producers that cannot set headers) as the
// headers consumers extract. Payloads without it cost one byte search.
func appendEventTraceContext(headers []kafka.Header, payload []byte) []kafka.Header {
	if !bytes.Contains(payload, traceparentAttr) {
		return headers
	}
	var ext struct {
		TraceParent string `json:"traceparent"`
		TraceState  string `json:"tracestate"`
	}
	if json.Unmarshal(payload, &ext) != nil || ext.TraceParent == "" {
		return headers
	}
	headers = append(headers, kafka.Header{Key: "traceparent", Value: []byte(ext.TraceParent)})
	if ext.TraceState != "" {
		headers = append(headers, kafka.Header{Key: "tracestate", Value: []byte(ext.TraceState)})
	}
	return headers
}
