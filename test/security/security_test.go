package security

import "testing"

// TestSecurity runs the attacks that can share one platform, each as a subtest; the ones
// that need a platform configured or broken in their own way are tests of their own
// (TestBruteForce, TestDeletedSigningKey).
func TestSecurity(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, nil)
	t.Run("AuthorizationMatrix", func(t *testing.T) { testAuthorizationMatrix(t, p) })
	t.Run("TokenAttacks", func(t *testing.T) { testTokenAttacks(t, p) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, p) })
	t.Run("EnumerationTiming", func(t *testing.T) { testEnumerationTiming(t, p) })
	t.Run("Limits", func(t *testing.T) {
		t.Run("Body", func(t *testing.T) { t.Parallel(); testBodyLimits(t, p) })
		t.Run("PageSize", func(t *testing.T) { t.Parallel(); testPageCaps(t, p) })
		t.Run("SlowClients", func(t *testing.T) { t.Parallel(); testSlowClients(t, p) })
	})
}
