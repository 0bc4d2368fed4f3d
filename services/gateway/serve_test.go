package gateway

import (
	"context"
	"net"
	"testing"
)

// ServeForTest serves g on a loopback port until the test ends and returns its base URL.
// (Exported for the package's external tests.)
func ServeForTest(t testing.TB, g *Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
