//go:build !linux

package gateway

import "syscall"

// rawIO is Linux's (rawio_linux.go); elsewhere connections are read and written as they are.
type rawIO struct{}

func newRawIO(syscall.RawConn) *rawIO { return nil }

func (*rawIO) read([]byte) (int, error)  { panic("unreachable") }
func (*rawIO) write([]byte) (int, error) { panic("unreachable") }
