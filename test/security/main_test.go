// Package security attacks a running Sbor the way hostile clients do, through the gateway
// only: an authorization matrix over every public route, forged and stale tokens, a deleted
// signing key, brute-force logins, malformed and oversized input to every route, slow
// clients. After the whole run, TestMain reads every line every process logged and fails if
// a secret (a password, an access or refresh token, the private signing key) is among them.
package security

import (
	"fmt"
	"os"
	"testing"

	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

// TestMain is testkit.Main with the log scan between the tests and the shutdown.
func TestMain(m *testing.M) {
	code := m.Run()
	if started() > 0 {
		leaks := scanLogsForSecrets()
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "SECRET IN LOG:", l)
		}
		if len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d log lines of the security run contain a secret\n", len(leaks))
			if code == 0 {
				code = 1
			}
		} else {
			fmt.Fprintf(os.Stderr, "security: %d log lines of %d processes hold none of %d secrets\n",
				scanned.lines, scanned.processes, scanned.secrets)
		}
	}
	kafkatest.Shutdown()
	if err := pgtest.Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
