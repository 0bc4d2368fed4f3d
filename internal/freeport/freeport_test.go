package freeport

import (
	"fmt"
	"net"
	"testing"
)

func TestPickReturnsDistinctBindablePortsBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		port, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if port < lowest || port >= lowest+count {
			t.Fatalf("port %d outside [%d, %d)", port, lowest, lowest+count)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
	port, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("picked port %d is not bindable: %v", port, err)
	}
	ln.Close()
}

func TestPickSkipsPortsInUse(t *testing.T) {
	// Occupy a port inside the range; Pick must never return it.
	var busy net.Listener
	for p := lowest; p < lowest+count; p++ {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			busy = ln
			break
		}
	}
	if busy == nil {
		t.Skip("no port of the range could be occupied")
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	for range 2000 {
		port, err := Pick()
		if err != nil {
			break // the range is used up by this test's picks: fine
		}
		if port == busyPort {
			t.Fatalf("Pick returned port %d, which is in use", port)
		}
	}
}

func TestAddrIsABindableLoopbackAddress(t *testing.T) {
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Addr returned %s, which is not bindable: %v", addr, err)
	}
	defer ln.Close()
	if port := ln.Addr().(*net.TCPAddr).Port; ln.Addr().String() != addr || port < lowest || port >= lowest+count {
		t.Fatalf("Addr returned %s, listening on %s", addr, ln.Addr())
	}
}
