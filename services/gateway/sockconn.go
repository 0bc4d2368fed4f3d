package gateway

import (
	"net"
	"syscall"
)

// sockConn is a connection of the gateway's, to a client or to a service: its reads and
// writes go through rawIO where the platform has it (rawio_linux.go), through the
// connection's own calls elsewhere.
type sockConn struct {
	net.Conn
	raw syscall.RawConn // nil for a connection without a file descriptor
	io  *rawIO          // nil: Conn's own Read and Write
}

func newSockConn(c net.Conn) sockConn {
	s := sockConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.raw = rc
		}
	}
	s.io = newRawIO(s.raw)
	return s
}

func (c *sockConn) Read(p []byte) (int, error) {
	if c.io != nil {
		return c.io.read(p)
	}
	return c.Conn.Read(p)
}

func (c *sockConn) Write(p []byte) (int, error) {
	if c.io != nil {
		return c.io.write(p)
	}
	return c.Conn.Write(p)
}
