package gateway

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// sockConn is a connection of the gateway's, to a client or to a service: its reads and
// writes go through rawIO where the platform has it (rawio_linux.go), through the
// connection's own calls elsewhere; its deadlines are moved only when they must be.
type sockConn struct {
	net.Conn
	raw syscall.RawConn // nil for a connection without a file descriptor
	io  *rawIO          // nil: Conn's own Read and Write

	deadlineMu      sync.Mutex
	readAt, writeAt time.Time // the deadlines set on Conn
}

// init makes s the gateway's wrapper of c.
func (s *sockConn) init(c net.Conn) {
	s.Conn = c
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.raw = rc
		}
	}
	s.io = newRawIO(s.raw)
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

// deadlineSlack is how much later than the one in force a new deadline must be to be set.
// On every request of a kept-alive connection fasthttp moves the same deadlines a little
// further (an answer's 30 s to be written; a request's 30 s to be sent and answered), and
// moving a runtime timer each time was ~2 % of the gateway's CPU per proxied GET. An earlier
// deadline, or no deadline, is always set at once; a later one may be up to this much early.
const deadlineSlack = time.Second

// keepDeadline reports whether the deadline in force may stay instead of next: both set, next
// later by less than the slack, and the one in force not yet passed (a connection past its
// deadline has timed out, and a new deadline must revive it).
func keepDeadline(current, next time.Time) bool {
	return !current.IsZero() && !next.IsZero() && !next.Before(current) && next.Sub(current) < deadlineSlack &&
		time.Now().Before(current)
}

func (c *sockConn) SetReadDeadline(t time.Time) error {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	return moveDeadline(&c.readAt, t, c.Conn.SetReadDeadline)
}

func (c *sockConn) SetWriteDeadline(t time.Time) error {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	return moveDeadline(&c.writeAt, t, c.Conn.SetWriteDeadline)
}

// SetDeadline is both deadlines moved on their own: fasthttp calls it only when it hands a
// connection over or hijacks it, never per request.
func (c *sockConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// moveDeadline sets the deadline *at is the record of to t, with set, unless the one in
// force may stay.
func moveDeadline(at *time.Time, t time.Time, set func(time.Time) error) error {
	if keepDeadline(*at, t) {
		return nil
	}
	*at = time.Time{} // unknown if the call fails
	if err := set(t); err != nil {
		return err
	}
	*at = t
	return nil
}
