//go:build unix && !linux

package pgserver

import (
	"errors"
	"syscall"
)

// setParentDeathSignal is a no-op: parent-death signals are Linux-only. A throwaway server
// then outlives a crashed test process; Stop (pgtest.Main) still stops it normally.
func setParentDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// isPostmasterOf cannot inspect another process portably; postgres' own lock-file check
// rejects a pid file whose process is alive but not a postmaster.
func isPostmasterOf(int, string) bool { return true }

// childPIDs is not available without /proc: Kill then reaches the postmaster only, and its
// backends exit on their own once they notice it is gone.
func childPIDs(int) []int { return nil }
