// Package testkit holds what test packages share. Main is the TestMain of a package that
// uses both PostgreSQL (pgtest) and Kafka (kafkatest): it runs the tests, then stops whatever
// either harness started.
package testkit

import (
	"fmt"
	"os"
	"testing"

	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

// Main runs the tests and stops the harnesses' servers, then exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	kafkatest.Shutdown()
	if err := pgtest.Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "testkit:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
