package operator

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
)

// The operator serves controller-runtime's registry, not Prometheus' default one: its Kafka
// consumer's metrics must be registered there too, and Run may register them again.
func TestConsumerMetricsAreServedByTheManagersRegistry(t *testing.T) {
	registerConsumerMetrics()
	registerConsumerMetrics() // a second Run in one process
	for _, c := range kafkabus.Collectors() {
		err := ctrlmetrics.Registry.Register(c)
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			t.Fatalf("registering a consumer collector again: %v, want AlreadyRegisteredError", err)
		}
	}
}
