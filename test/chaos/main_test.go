// Package chaos breaks a running Sbor during a ticket sale and proves that nothing is lost
// and nothing happens twice.
//
// Each test starts the whole platform as processes (test/platform), drives a sale with
// concurrent buyers through the gateway, injects one fault, heals it, lets the sale go on,
// and then checks the books (sale.verify):
//
//   - every purchase answered 201 exists exactly once, and no ticket exists that no buyer
//     was told about (buyers retry with their Idempotency-Key until a definite answer);
//   - the ticket types' sold counters equal the tickets;
//   - every ticket has exactly one ticket.purchased CloudEvent on Kafka;
//   - every ticket has exactly one notification, and no notification exists twice.
//
// The figures (attempts, acknowledged, delivered, duplicates, outage answers) are logged and
// written to .bench/chaos-<test>.json. Faults stay on this machine: every server listens on
// loopback, every loop is bounded in count and time.
package chaos

import (
	"testing"

	"github.com/sbor-dev/sbor/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
