package main

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
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

// serveRelay relays each connection accepted on ln to target until either side closes.
// io.Copy between two TCP connections is Go's cheapest path (splice on Linux).
func serveRelay(ln net.Listener, target string) error {
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

// relayListenerFD is where the relay process finds its listening socket: the bench opens it
// and hands it over (exec.Cmd.ExtraFiles), so the relay accepts as soon as it runs and
// nobody has to wait for it to listen.
const relayListenerFD = 3

// startRelay starts the relay process towards target (host:port) and returns its base URL
// and process id; it ends with ctx, and with the bench.
func startRelay(ctx context.Context, target string) (string, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, err
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	self, err := os.Executable()
	if err != nil {
		return "", 0, err
	}
	cmd := exec.CommandContext(ctx, self, relayCommand, target)
	cmd.ExtraFiles = []*os.File{f} // relayListenerFD
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	go func() { _ = cmd.Wait() }()
	return "http://" + ln.Addr().String(), cmd.Process.Pid, nil
}

// runRelay is the relay process's main.
func runRelay(target string) error {
	ln, err := net.FileListener(os.NewFile(relayListenerFD, "relay listener"))
	if err != nil {
		return err
	}
	return serveRelay(ln, target)
}
