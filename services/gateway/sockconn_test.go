package gateway

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestKeepDeadline(t *testing.T) {
	now := time.Now()
	soon := now.Add(time.Hour)
	for _, tc := range []struct {
		name          string
		current, next time.Time
		keep          bool
	}{
		{"a little later", soon, soon.Add(deadlineSlack / 2), true},
		{"the same", soon, soon, true},
		{"later by the slack", soon, soon.Add(deadlineSlack), false},
		{"earlier", soon, soon.Add(-time.Millisecond), false},
		{"none in force", time.Time{}, soon, false},
		{"none asked", soon, time.Time{}, false},
		{"a little later than one passed", now.Add(-time.Millisecond), now.Add(deadlineSlack / 2), false},
	} {
		if got := keepDeadline(tc.current, tc.next); got != tc.keep {
			t.Errorf("%s: keepDeadline = %v, want %v", tc.name, got, tc.keep)
		}
	}
}

// A deadline moved a little later stays where it was, so it fires on time or a little
// early, never late; an earlier one is set at once, and so is clearing it.
func TestSockConnMovesDeadlinesOnlyWhenItMust(t *testing.T) {
	mine, peer := net.Pipe()
	defer peer.Close()
	var c sockConn
	c.init(mine)
	defer c.Close()

	first := time.Now().Add(100 * time.Millisecond)
	if err := c.SetReadDeadline(first); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(first.Add(deadlineSlack / 2)); err != nil {
		t.Fatal(err)
	}
	if !c.readAt.Equal(first) {
		t.Errorf("read deadline moved to %v, want it kept at %v", c.readAt, first)
	}
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want the deadline exceeded", err)
	}

	// Past its deadline, the connection has timed out: a new deadline, however close to the
	// old one, is set.
	revived := first.Add(deadlineSlack / 2)
	if err := c.SetReadDeadline(revived); err != nil {
		t.Fatal(err)
	}
	if !c.readAt.Equal(revived) {
		t.Errorf("read deadline %v after the old one passed, want %v", c.readAt, revived)
	}
	go func() { _, _ = peer.Write([]byte("z")) }()
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Errorf("read after a new deadline: %d, %v", n, err)
	}

	// Later by more than the slack: set. Earlier: set. None: cleared.
	far := time.Now().Add(time.Hour)
	if err := c.SetDeadline(far); err != nil {
		t.Fatal(err)
	}
	if !c.readAt.Equal(far) || !c.writeAt.Equal(far) {
		t.Errorf("deadlines %v/%v, want %v", c.readAt, c.writeAt, far)
	}
	soon := time.Now().Add(50 * time.Millisecond)
	if err := c.SetWriteDeadline(soon); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) { // nobody reads the pipe
		t.Fatalf("write: %v, want the earlier deadline exceeded", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = peer.Write([]byte("y")) }()
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Errorf("read with no deadline: %d, %v", n, err)
	}
}

// BenchmarkDeadlines makes the deadline calls fasthttp makes on a proxied GET: on the
// client's connection, the idle wait's, the request header's and the answer's; on the
// service's, the request's to be sent and answered. "net.Conn" sets each on the connection,
// "sockConn" through the gateway's wrapper.
//
//	go test -run '^$' -bench Deadlines ./services/gateway
func BenchmarkDeadlines(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		peer, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { peer.Close() })
		return c
	}
	client, service := dial(), dial()
	defer client.Close()
	defer service.Close()
	var wrappedClient, wrappedService sockConn
	wrappedClient.init(client)
	wrappedService.init(service)
	for _, tc := range []struct {
		name            string
		client, service net.Conn
	}{{"net.Conn", client, service}, {"sockConn", &wrappedClient, &wrappedService}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				now := time.Now()
				_ = tc.client.SetReadDeadline(now.Add(120 * time.Second))
				_ = tc.client.SetReadDeadline(now.Add(5 * time.Second))
				_ = tc.service.SetWriteDeadline(now.Add(30 * time.Second))
				_ = tc.service.SetReadDeadline(now.Add(30 * time.Second))
				_ = tc.client.SetWriteDeadline(now.Add(30 * time.Second))
			}
		})
	}
}
