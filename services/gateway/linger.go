package gateway

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// When the gateway refuses a request before reading its body (a body over the limit, say),
// closing the connection at once would make the kernel reset it while the client is still
// sending: the client then sees "connection reset" instead of the 413 it was sent. As
// net/http's server does, such a connection is closed gently: the gateway finishes its side
// (FIN), then reads and discards what the client still sends, for a short while, before
// closing. (net/http's server waits 500 ms; on a loaded machine a client sending 2 MiB
// needed longer, and got a reset in the security suite.)
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 8 << 20
)

// lingerListener wraps accepted connections in lingerConn.
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &lingerConn{}
	lc.init(c)
	return lc, nil
}

// lingerConn closes gently once lingerOnClose was called for it.
type lingerConn struct {
	sockConn
	linger atomic.Bool
}

// lingerOnClose asks for the request's connection to be closed gently (see lingerTime).
func lingerOnClose(fc *fasthttp.RequestCtx) {
	if c, ok := fc.Conn().(*lingerConn); ok {
		c.linger.Store(true)
	}
}

func (c *lingerConn) Close() error {
	if c.linger.Load() {
		if tcp, ok := c.Conn.(*net.TCPConn); ok && tcp.CloseWrite() == nil {
			_ = c.SetReadDeadline(time.Now().Add(lingerTime))
			_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
		}
	}
	return c.Conn.Close()
}
