package pgserver

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// serverPrograms are the executables a usable binary directory must hold. Start runs only
// initdb and postgres; pg_ctl is required so that the directory is a complete server
// install a developer can also drive by hand (pg_ctl -D dir status, stop, promote).
var serverPrograms = []string{"postgres", "initdb", "pg_ctl"}

// defaultRoots are the directories searched, after PATH, for <root>/<version>/bin. This is
// where Debian and Ubuntu put the server binaries (package postgresql-NN), which they do
// not put on PATH.
var defaultRoots = []string{"/usr/lib/postgresql"}

// ErrNoBinaries is wrapped by the error FindBinaries returns when no server install is found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found")

// FindBinaries returns the directory that holds the PostgreSQL server programs postgres,
// initdb and pg_ctl: the first PATH entry holding all three, else the highest version
// under /usr/lib/postgresql/*/bin. The error, when there is none, wraps ErrNoBinaries and
// says what to install.
func FindBinaries() (dir string, err error) {
	return findBinaries(os.Getenv("PATH"), defaultRoots)
}

// findBinaries is FindBinaries with the PATH value and the version roots injected.
func findBinaries(pathEnv string, roots []string) (string, error) {
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			continue // an empty PATH element means ".", which we never want to trust
		}
		if hasServerPrograms(d) {
			return resolveLinks(d), nil
		}
	}
	type candidate struct {
		dir     string
		version []int
	}
	var found []candidate
	for _, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range entries {
			v, ok := parseVersion(e.Name())
			if !ok {
				continue
			}
			d := filepath.Join(root, e.Name(), "bin")
			if hasServerPrograms(d) {
				found = append(found, candidate{d, v})
			}
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return versionLess(found[j].version, found[i].version) })
		return found[0].dir, nil
	}
	where := make([]string, len(roots))
	for i, r := range roots {
		where[i] = filepath.Join(r, "*", "bin")
	}
	return "", &notFoundError{where: strings.Join(where, ", ")}
}

type notFoundError struct{ where string }

func (e *notFoundError) Error() string {
	loc := "on PATH"
	if e.where != "" {
		loc += " or under " + e.where
	}
	return "PostgreSQL server binaries (postgres, initdb, pg_ctl) not found " + loc +
		": install the Debian package postgresql (apt-get install postgresql)"
}

func (e *notFoundError) Unwrap() error { return ErrNoBinaries }

// resolveLinks returns the directory the server programs in dir really live in when they
// are symbolic links into one directory (such as /usr/local/bin/postgres ->
// /usr/lib/postgresql/15/bin/postgres), else dir made absolute.
func resolveLinks(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	real := ""
	for _, p := range serverPrograms {
		target, err := filepath.EvalSymlinks(filepath.Join(abs, p))
		if err != nil || (real != "" && filepath.Dir(target) != real) {
			return abs
		}
		real = filepath.Dir(target)
	}
	return real
}

func hasServerPrograms(dir string) bool {
	for _, p := range serverPrograms {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// parseVersion parses directory names such as "15", "9.6" or "17.2".
func parseVersion(s string) ([]int, bool) {
	parts := strings.Split(s, ".")
	v := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		v[i] = n
	}
	return v, true
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}
