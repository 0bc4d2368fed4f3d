package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/sbor-dev/sbor/internal/freeport"
)

// The gateway-overhead comparison has a third side: the same GET as the direct side (identity
// headers, no token) sent through a bare TCP relay in its own process, which copies bytes
// between the client's connection and one of its own to the ticket service and does nothing
// else — no HTTP, no token, no header. No proxy can cost less than that hop, so its overhead
// in the same run is the floor the gateway's is to be read against: on a machine whose cores
// the load generator, the service and PostgreSQL already keep busy, moving each request and
// answer through one more process is not free, whatever the process does with them.
//
// The relay is this program started again with the relayCommand argument, so that its CPU
// is its own (the bench's own figure is what the load generator costs).
const relayCommand = "relay"

// serveRelay accepts connections on listen and relays each to target until either side
// closes. io.Copy between two TCP connections is Go's cheapest path (splice on Linux).
func serveRelay(listen, target string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		client, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer client.Close()
			service, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer service.Close()
			go func() {
				_, _ = io.Copy(service, client)
				_ = service.(*net.TCPConn).CloseWrite()
			}()
			_, _ = io.Copy(client, service)
		}()
	}
}

// startRelay starts the relay process towards target (host:port) and returns its base URL
// and process id; it ends with ctx, and with the bench.
func startRelay(ctx context.Context, target string) (string, int, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return "", 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", 0, err
	}
	cmd := exec.CommandContext(ctx, self, relayCommand, addr, target)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	go func() { _ = cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr, cmd.Process.Pid, nil
		}
	}
	_ = cmd.Process.Kill()
	return "", 0, fmt.Errorf("the relay did not listen on %s within 10s", addr)
}
