// Package freeport picks loopback TCP ports for the servers that tests and `sbor all` start
// as separate processes (PostgreSQL, Kafka, the platform's targets).
//
// It does not ask the kernel for port 0: that port comes from the ephemeral range, which
// every outgoing connection (Kafka and PostgreSQL clients, HTTP clients of parallel tests)
// draws from too, so it can be taken between the check and the server's own bind — seen as
// "bind: address already in use" under load. Ports below that range (Linux: 32768–60999,
// other systems start higher) are taken only by listeners, and this process never hands the
// same one out twice.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// The range ports are drawn from: below every common ephemeral range.
const (
	lowest = 20000
	count  = 12000
)

var handedOut sync.Map

// Pick returns a port on 127.0.0.1 that nothing listens on and that this process has not
// returned before.
func Pick() (int, error) {
	for range 1000 {
		port := lowest + rand.IntN(count)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, errors.New("freeport: no free loopback port between 20000 and 32000")
}

// Addr returns a loopback address ("127.0.0.1:port") on a port from Pick, for a server
// started in another process to listen on.
func Addr() (string, error) {
	port, err := Pick()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}
