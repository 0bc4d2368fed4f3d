package gateway

import (
	"testing"

	"github.com/sbor-dev/sbor/internal/testkit"
)

// ServeForTest serves g on a loopback port until the test ends and returns its base URL.
// (Exported for the package's external tests.)
func ServeForTest(t testing.TB, g *Gateway) string { return testkit.ServeLoopback(t, g.Serve) }
