package gateway

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, the first read and written through
// rawIO.
func tcpPair(t *testing.T) (*rawIO, net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	mine, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { mine.Close(); peer.Close() })
	var sc sockConn
	sc.init(mine)
	r := sc.io
	if r == nil {
		t.Fatal("a TCP connection has a raw connection")
	}
	return r, mine, peer
}

// A write larger than the socket buffers fills them (EAGAIN), waits until the peer reads, and
// goes on: every byte arrives, in order.
func TestRawIOWritesPastAFullSocketBuffer(t *testing.T) {
	r, _, peer := tcpPair(t)
	sent := make([]byte, 8<<20)
	_, _ = rand.Read(sent)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the writer fill the buffers first
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(sent))))
		got <- b
	}()
	n, err := r.write(sent)
	if err != nil || n != len(sent) {
		t.Fatalf("write: %d of %d bytes, %v", n, len(sent), err)
	}
	if !bytes.Equal(<-got, sent) {
		t.Fatal("the peer received other bytes than were written")
	}
}

// A read waits for data, returns what arrived, and io.EOF once the peer has closed.
func TestRawIOReadsWhatArrivesThenEOF(t *testing.T) {
	r, _, peer := tcpPair(t)
	go func() {
		time.Sleep(20 * time.Millisecond) // the read has to wait for it
		_, _ = peer.Write([]byte("hello"))
		peer.Close()
	}()
	got, err := io.ReadAll(readerFunc(r.read))
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v; want \"hello\" and then io.EOF", got, err)
	}
	if n, err := r.read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("after EOF: %d, %v", n, err)
	}
}

// Deadlines set on the connection hold for raw reads (fasthttp's timeouts rely on them), and
// the error is a timeout, as net.Conn's.
func TestRawIOKeepsTheConnectionsDeadlines(t *testing.T) {
	r, mine, _ := tcpPair(t)
	_ = mine.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := r.read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
}

// Errors are the socket's (a reset peer is ECONNRESET, as errors.Is sees it); a closed
// connection is net.ErrClosed.
func TestRawIOReportsSocketErrors(t *testing.T) {
	r, mine, peer := tcpPair(t)
	_ = peer.(*net.TCPConn).SetLinger(0) // close with a reset
	_, _ = mine.Write([]byte("unread"))  // unread data also makes the close a reset
	time.Sleep(10 * time.Millisecond)
	peer.Close()
	time.Sleep(10 * time.Millisecond)
	if _, err := r.read(make([]byte, 8)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read from a reset connection: %v, want ECONNRESET", err)
	}
	mine.Close()
	if _, err := r.write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed connection: %v, want net.ErrClosed", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
