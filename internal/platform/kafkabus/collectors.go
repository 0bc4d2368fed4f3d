package kafkabus

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the consumer metrics (handled messages, lag). They live in Prometheus'
// default registry; a process that serves another registry — the operator serves
// controller-runtime's — registers them there too.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{consumed, consumerLag}
}
