package gateway

import (
	"io"
	"net"
	"net/netip"
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

// clientListener wraps accepted connections in clientConn.
type clientListener struct{ net.Listener }

func (l clientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &clientConn{peer: remoteAddr(c.RemoteAddr())}
	cc.peerText = cc.peer.String()
	cc.init(c)
	return cc, nil
}

// clientConn is a client's connection to the gateway. It knows its peer's address, read
// once when accepted instead of on every request it carries, and it closes gently once
// lingerOnClose was called for it.
type clientConn struct {
	sockConn
	peer     netip.Addr
	peerText string // peer.String()
	linger   atomic.Bool
}

// peerOf returns the address of the request's peer, and its text.
func peerOf(fc *fasthttp.RequestCtx) (netip.Addr, string) {
	if c, ok := fc.Conn().(*clientConn); ok {
		return c.peer, c.peerText
	}
	// A connection the gateway's listener did not accept: ServeFastHTTP under a server of
	// the embedder's own.
	peer := remoteAddr(fc.RemoteAddr())
	return peer, peer.String()
}

// remoteAddr is a connection's peer address, without an IPv4-mapped IPv6 prefix.
func remoteAddr(a net.Addr) netip.Addr {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	return peerAddr(a.String())
}

// lingerOnClose asks for the request's connection to be closed gently (see lingerTime).
func lingerOnClose(fc *fasthttp.RequestCtx) {
	if c, ok := fc.Conn().(*clientConn); ok {
		c.linger.Store(true)
	}
}

func (c *clientConn) Close() error {
	if c.linger.Load() {
		if tcp, ok := c.Conn.(*net.TCPConn); ok && tcp.CloseWrite() == nil {
			_ = c.SetReadDeadline(time.Now().Add(lingerTime))
			_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
		}
	}
	return c.Conn.Close()
}
