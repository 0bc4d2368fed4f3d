package testkit

import (
	"context"
	"net"
	"testing"
)

// ServeLoopback runs a server (a service's Run, the gateway's Serve) on a loopback port
// until the test ends, then stops it through its context and fails the test if it did not
// stop cleanly. It returns the server's base URL.
func ServeLoopback(t testing.TB, run func(ctx context.Context, ln net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server on %s: %v", ln.Addr(), err)
		}
	})
	return "http://" + ln.Addr().String()
}
