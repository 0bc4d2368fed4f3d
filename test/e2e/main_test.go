// Package e2e drives the fifteen flows of DESIGN.md and its error statuses through the
// gateway of a platform started the way a user runs it (test/platform).
package e2e

import (
	"testing"

	"github.com/sbor-dev/sbor/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
