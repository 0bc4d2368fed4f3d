package gateway

import (
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestClientConnKnowsItsPeerFromTheStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ listen, dial, want string }{
		{"127.0.0.1:0", "127.0.0.1", "127.0.0.1"},
		// A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1; the gateway's
		// trusted-proxy prefixes and X-Forwarded-For want the IPv4 address.
		{"[::]:0", "127.0.0.1", "127.0.0.1"},
		{"[::1]:0", "::1", "::1"},
	} {
		ln, err := net.Listen("tcp", tc.listen)
		if err != nil {
			t.Logf("%s: %v (no such stack here)", tc.listen, err)
			continue
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		dialed, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr(tc.dial), uint16(port)).String())
		if err != nil {
			t.Logf("%s from %s: %v (no such stack here)", tc.listen, tc.dial, err)
			continue
		}
		defer dialed.Close()
		accepted, err := clientListener{ln}.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer accepted.Close()
		c, ok := accepted.(*clientConn)
		if !ok {
			t.Fatalf("accepted a %T, want *clientConn", accepted)
		}
		if c.peer != netip.MustParseAddr(tc.want) || c.peerText != tc.want {
			t.Errorf("%s from %s: peer %v %q, want %s", tc.listen, tc.dial, c.peer, c.peerText, tc.want)
		}
	}
}

// ServeFastHTTP under another server sees connections that are not clientConns: the peer is
// then read from the request, with the same unmapping.
func TestPeerOfAConnectionTheGatewayDidNotAccept(t *testing.T) {
	t.Parallel()
	var fc fasthttp.RequestCtx
	fc.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.7"), Port: 4321}, nil)
	peer, text := peerOf(&fc)
	if peer != netip.MustParseAddr("10.0.0.7") || text != "10.0.0.7" {
		t.Errorf("peer %v %q, want 10.0.0.7", peer, text)
	}
}
