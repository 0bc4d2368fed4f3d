package notification

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// delaySeconds is the end-to-end latency users feel: from the fact (the CloudEvent's time,
	// set when the purchase or cancellation committed) to the notification being stored and
	// visible through the API. It spans the producer's outbox, Kafka and this consumer.
	delaySeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sbor_notification_delay_seconds",
		Help:    "Time from the CloudEvent's time to its notification being stored, per notification type.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"type"})
	createdTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_notifications_created_total", Help: "Notifications stored, per type (redeliveries excluded).",
	}, []string{"type"})
	deadLettersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_notification_dead_letters_total", Help: "Consumed messages that could not be handled and were parked.",
	}, []string{"topic"})
)
