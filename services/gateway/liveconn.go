package gateway

import (
	"bytes"
	"errors"
	"net"
	"syscall"

	"github.com/valyala/fasthttp"
)

// errStaleConn is returned, before anything is written, for a kept-alive connection the
// service closed while it sat idle in the pool (the service restarted, or shut down
// gracefully). Nothing was sent, so any request, a POST too, is safe to send again.
var errStaleConn = errors.New("gateway: the service closed this idle connection")

// liveConn checks, before a pooled connection carries its next request, that the service has
// not closed it meanwhile. net/http's Transport notices that by itself (a goroutine per
// connection is always reading); fasthttp's HostClient finds out only when the answer does not
// come, when a POST can no longer be retried safely. The check is one non-blocking peek at the
// socket (a single recvfrom) per reused connection, for the requests that could not be sent
// again otherwise.
type liveConn struct {
	sockConn
	// answered is set once a read happened: the next write starts a new request on a
	// connection that has been idle.
	answered bool
}

func dialLive(addr string) (net.Conn, error) {
	conn, err := fasthttp.DialTimeout(addr, upstreamDialTimeout)
	if err != nil {
		return nil, err
	}
	lc := &liveConn{}
	lc.init(conn)
	if lc.raw == nil { // nothing to peek at
		return conn, nil
	}
	return lc, nil
}

func (c *liveConn) Read(p []byte) (int, error) {
	c.answered = true
	return c.sockConn.Read(p)
}

func (c *liveConn) Write(p []byte) (int, error) {
	if c.answered {
		c.answered = false
		// A resendable request needs no peek: when the connection turns out closed, fasthttp
		// sends it again on a new one (retryUpstream), and the service never saw the first.
		method, _, _ := bytes.Cut(p, []byte(" "))
		if !resendable(method) && !c.open() {
			return 0, errStaleConn
		}
	}
	return c.sockConn.Write(p)
}

// open reports whether the peer has neither closed the connection nor sent anything
// unasked (a server's 408 before it closes counts as closed).
func (c *liveConn) open() bool {
	var buf [1]byte
	open := false
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true // never wait for data: this is a peek
	})
	return err == nil && open
}

// retryUpstream decides whether a failed call is sent again (within the upstream timeout):
// idempotent methods after any failure, as fasthttp does by default, and every method when
// the request was never sent.
func retryUpstream(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if errors.Is(err, errStaleConn) {
		return false, true
	}
	return false, resendable(req.Header.Method())
}

// resendable reports whether a request of this method is sent again after any failure: the
// idempotent methods, as fasthttp does by default (its own list is unexported, and setting
// RetryIfErr replaces it). liveConn skips its peek for them.
func resendable(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPut:
		return true
	}
	return false
}
