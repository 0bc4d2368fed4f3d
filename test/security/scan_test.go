package security

import (
	"strings"
	"testing"
)

// TestSecretScanFindsLeaks proves the log scan of TestMain would see a leak: whole tokens, a
// JWT's signature alone, a refresh token's body, a password and a line of a key.
func TestSecretScanFindsLeaks(t *testing.T) {
	jwt := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0." + strings.Repeat("s1G", 15)
	refresh := "sbr_" + strings.Repeat("R", 43)
	secret("access token", jwt)
	secret("refresh token", refresh)
	secret("private key PEM line", "MC4CAQAwBQYDK2VwBCIEIFakeFakeFakeFakeFakeFakeFakeFakeFake")
	defer func() {
		regMu.Lock()
		defer regMu.Unlock()
		for _, s := range []string{jwt, strings.Repeat("s1G", 15), refresh, strings.Repeat("R", 43), "MC4CAQAwBQYDK2VwBCIEIFakeFakeFakeFakeFakeFakeFakeFakeFake"} {
			delete(secrets, s)
		}
	}()
	log := strings.Join([]string{
		`{"msg":"fine","request_id":"0123456789abcdef0123456789abcdef"}`,
		`{"msg":"token refused","header":"Bearer ` + jwt + `"}`,
		`{"msg":"sig","x":"` + strings.Repeat("s1G", 15) + `"}`,
		`{"msg":"refresh","t":"` + strings.TrimPrefix(refresh, "sbr_") + `"}`,
		`{"msg":"login","password":"` + password + `"}`,
		`key: MC4CAQAwBQYDK2VwBCIEIFakeFakeFakeFakeFakeFakeFakeFakeFake`,
	}, "\n")
	secret("password", password)
	regMu.Lock()
	leaks := scanText("test", log)
	regMu.Unlock()
	if len(leaks) != 5 {
		t.Fatalf("found %d leaks in 5 leaking lines: %q", len(leaks), leaks)
	}
}
