package pgserver

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

func setParentDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) {
	attr.Pdeathsig = sig
}

// processAlive reports whether pid names a process that has not exited (a zombie has).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err)
	}
	// pid (comm) S ...: the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// isPostmasterOf reports whether live process pid is a PostgreSQL server for data
// directory dir: the postmaster chdirs into its data directory, so its cwd is dir. When
// the cwd cannot be read (another user's process), a postgres command line has to do.
func isPostmasterOf(pid int, dir string) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	if cwd, err := os.Readlink(proc + "/cwd"); err == nil {
		want, err := filepath.EvalSymlinks(dir)
		if err != nil {
			want = dir
		}
		return cwd == want
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return true // cannot tell: let postgres' own lock-file check decide
	}
	return bytes.Contains(cmdline, []byte("postgres")) || bytes.Contains(cmdline, []byte("postmaster"))
}

// childPIDs lists the processes whose parent is pid. PostgreSQL backends make themselves
// process group and session leaders (setsid), so a signal to the postmaster's group does
// not reach them; they are found through /proc instead.
func childPIDs(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(stat[i+1:])
		if len(fields) > 1 {
			if ppid, err := strconv.Atoi(string(fields[1])); err == nil && ppid == pid {
				kids = append(kids, n)
			}
		}
	}
	return kids
}
