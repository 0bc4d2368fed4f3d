package event_test

import (
	"testing"

	"github.com/sbor-dev/sbor/internal/testkit"
)

// TestMain stops the PostgreSQL server and Kafka broker the tests started.
func TestMain(m *testing.M) { testkit.Main(m) }
