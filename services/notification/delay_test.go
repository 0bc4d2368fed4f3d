package notification_test

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sbor-dev/sbor/internal/platform/identity"
)

// TestPurchaseNotificationDelay measures, without asserting anything, the delay from a
// purchase to its notification through the real ticket service, its outbox, Kafka and this
// consumer. It runs only when SBOR_MEASURE_NOTIFICATION_DELAY is a number of purchases:
//
//	SBOR_MEASURE_NOTIFICATION_DELAY=300 go test -run TestPurchaseNotificationDelay -v ./services/notification
//
// It prints the exact percentiles (ticket purchased_at → notification created_at) and the
// ones sbor_notification_delay_seconds estimates from its buckets, as Prometheus would.
func TestPurchaseNotificationDelay(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SBOR_MEASURE_NOTIFICATION_DELAY"))
	if n <= 0 {
		t.Skip("set SBOR_MEASURE_NOTIFICATION_DELAY=<purchases> to measure")
	}
	p := newPlatform(t, 100)
	organizer := newUser(identity.RoleOrganizer)
	eventID, typeID := p.publishedEvent(organizer, "Delay Check", time.Now().Add(72*time.Hour))
	buyer := newUser(identity.RoleUser)

	// Warm up: the consumer has joined its group once the first notification is stored.
	p.buy(buyer, eventID, typeID)
	eventually(t, 60*time.Second, "the first notification", func() (bool, string) {
		return count(t, p.pool, `SELECT count(*) FROM notifications`) == 1, ""
	})
	before := histogram(t, "ticket.purchased")

	var bought []boughtTicket
	for range n {
		bought = append(bought, p.buy(buyer, eventID, typeID))
		time.Sleep(10 * time.Millisecond) // a steady trickle, not one burst
	}
	eventually(t, 120*time.Second, "every notification", func() (bool, string) {
		got := count(t, p.pool, `SELECT count(*) FROM notifications`)
		return got == n+1, fmt.Sprint(got, " of ", n+1)
	})

	var delays []time.Duration
	for _, b := range bought {
		var created time.Time
		if err := p.pool.QueryRow(t.Context(), `SELECT created_at FROM notifications WHERE ticket_id = $1`, b.ID).Scan(&created); err != nil {
			t.Fatal(err)
		}
		delays = append(delays, created.Sub(b.PurchasedAt))
	}
	slices.Sort(delays)
	pct := func(q float64) time.Duration { return delays[int(math.Ceil(q*float64(len(delays))))-1] }
	t.Logf("exact, %d purchases: min %v  p50 %v  p90 %v  p99 %v  max %v",
		len(delays), delays[0], pct(.5), pct(.9), pct(.99), delays[len(delays)-1])

	after := histogram(t, "ticket.purchased")
	t.Logf("sbor_notification_delay_seconds{type=\"ticket.purchased\"}: %d observations, p50 ≈ %.3fs  p90 ≈ %.3fs  p99 ≈ %.3fs",
		after.count-before.count, after.quantile(before, .5), after.quantile(before, .9), after.quantile(before, .99))
}

// histogramSnapshot is a histogram's cumulative bucket counts at one moment.
type histogramSnapshot struct {
	count  uint64
	bounds []float64
	counts []uint64
}

func histogram(t *testing.T, typ string) histogramSnapshot {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "sbor_notification_delay_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabel(m, "type", typ) {
				continue
			}
			h := m.GetHistogram()
			s := histogramSnapshot{count: h.GetSampleCount()}
			for _, b := range h.GetBucket() {
				s.bounds = append(s.bounds, b.GetUpperBound())
				s.counts = append(s.counts, b.GetCumulativeCount())
			}
			return s
		}
	}
	return histogramSnapshot{}
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// quantile estimates the q-quantile of the observations since before, interpolating
// linearly inside a bucket as PromQL's histogram_quantile does.
func (s histogramSnapshot) quantile(before histogramSnapshot, q float64) float64 {
	total := float64(s.count - before.count)
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, bound := range s.bounds {
		c := float64(s.counts[i])
		if i < len(before.counts) {
			c -= float64(before.counts[i])
		}
		if c >= rank {
			return lower + (bound-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = bound, c
	}
	return s.bounds[len(s.bounds)-1]
}
