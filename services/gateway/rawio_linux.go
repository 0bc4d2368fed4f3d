package gateway

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP connection with raw system calls, still under Go's network
// poller: RawConn.Read and Write wait for the socket to be ready and keep the connection's
// deadlines, exactly as net.Conn's own Read and Write do.
//
// Why: most of the gateway's CPU per request is its four socket calls, and on loopback a
// write runs the receiving side's TCP processing too, so it often outlasts the runtime's
// 20 µs monitor tick. The runtime then takes the goroutine's P away from the thread in the
// system call and hands it to another thread (waking one up), and the first thread, back from
// the write, has to find a P again or sleep — context switches for a call that never blocks.
// The sockets are non-blocking (EAGAIN instead of waiting), so a raw call is as short as
// the kernel's work and cannot hold the P longer than that. Measured under the flash-sale
// bench (README, Performance): per proxied GET, 1.96 → 0.67 context switches and 0.131 →
// 0.120 ms of the gateway's CPU.
//
// One reader and one writer at a time, as fasthttp uses a connection: the buffer and results
// of the call in progress live in its rawOp, so the functions handed to RawConn are bound
// once and a read or write allocates nothing.
type rawIO struct {
	rc  syscall.RawConn
	in  rawOp // reads
	out rawOp // writes
}

// rawOp is one direction's system call in progress: fn (bound once) works on buf and leaves
// its results in n and errno.
type rawOp struct {
	buf   []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// newRawIO returns nil for nil (a connection without a file descriptor, say a test's
// in-memory pipe: it is read and written as it is).
func newRawIO(rc syscall.RawConn) *rawIO {
	if rc == nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.in.fn = r.in.readOnce
	r.out.fn = r.out.writeAll
	return r
}

func (r *rawIO) read(p []byte) (int, error) {
	n, err := r.in.run(r.rc.Read, "read", p)
	if n == 0 && err == nil && len(p) > 0 {
		return 0, io.EOF
	}
	return n, err
}

func (r *rawIO) write(p []byte) (int, error) { return r.out.run(r.rc.Write, "write", p) }

// run hands the op's function over p to wait (the RawConn's Read or Write, which calls it
// again each time the socket is ready) and returns what it did.
func (op *rawOp) run(wait func(func(fd uintptr) bool) error, name string, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op.buf, op.n, op.errno = p, 0, 0
	err := wait(op.fn)
	n, errno := op.n, op.errno
	op.buf = nil
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, socketError(name, errno)
	}
	return n, nil
}

// readOnce reads what is there; false (wait until readable, then again) when nothing is.
func (op *rawOp) readOnce(fd uintptr) bool {
	n, errno := rawCall(syscall.SYS_READ, fd, op.buf)
	switch errno {
	case 0:
		op.n = n
	case syscall.EAGAIN:
		return false
	default:
		op.errno = errno
	}
	return true
}

// writeAll writes until everything is written; false (wait until writable, then again) when
// the socket's buffer is full.
func (op *rawOp) writeAll(fd uintptr) bool {
	for op.n < len(op.buf) {
		n, errno := rawCall(syscall.SYS_WRITE, fd, op.buf[op.n:])
		switch errno {
		case 0:
			op.n += n
		case syscall.EAGAIN:
			return false
		default:
			op.errno = errno
			return true
		}
	}
	return true
}

// rawCall makes one read or write system call with p, again when a signal interrupted it.
func rawCall(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}

// socketError is the error net.Conn's Read or Write would return for errno.
func socketError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}
