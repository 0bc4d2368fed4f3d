package scanner_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sbor-dev/sbor/services/gateway/scanner"
)

type manifest struct {
	Inputs  map[string]string `json:"inputs"`
	Outputs map[string]string `json:"outputs"`
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	raw, err := fs.ReadFile(scanner.Files(), "manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The embedded files are the ones the build wrote.
func TestEmbeddedBuildIsComplete(t *testing.T) {
	m := readManifest(t)
	for _, name := range scanner.Assets {
		b, err := fs.ReadFile(scanner.Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		if m.Outputs[name] != sum(b) {
			t.Errorf("%s differs from what the build recorded: run hack/scanner-build.sh", name)
		}
	}
	if len(m.Outputs) != len(scanner.Assets) {
		t.Errorf("the build wrote %d files, the gateway serves %d", len(m.Outputs), len(scanner.Assets))
	}
}

// The committed build was made from the sources in web/scanner as they are now: editing a
// source (or the lock file) without rebuilding fails here, on any machine, without Node.
// hack/scanner-build.sh --check goes further and rebuilds byte for byte where Node exists.
func TestCommittedBuildIsNotStale(t *testing.T) {
	root := filepath.Join("..", "..", "..", "web", "scanner")
	if _, err := os.Stat(filepath.Join(root, "package.json")); err != nil {
		t.Fatalf("web/scanner not found: %v", err)
	}
	m := readManifest(t)
	sources, err := os.ReadDir(filepath.Join(root, "src"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"build.mjs", "package.json", "package-lock.json"}
	for _, e := range sources {
		want = append(want, "src/"+e.Name())
	}
	var have []string
	for name := range m.Inputs {
		have = append(have, name)
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(want, have) {
		t.Fatalf("the build was made from %v, the sources are %v: run hack/scanner-build.sh", have, want)
	}
	for _, name := range want {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if m.Inputs[name] != sum(b) {
			t.Errorf("web/scanner/%s changed since the committed build: run hack/scanner-build.sh", name)
		}
	}
}

// The page's JavaScript unit tests (signature checks against the Go side's shared vectors,
// the offline queue) run under `go test` too, where Node exists; they need no npm packages.
func TestJavaScriptUnits(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("SBOR_REQUIRE_BROWSER") == "1" {
			t.Fatal("node not found and SBOR_REQUIRE_BROWSER=1")
		}
		t.Skip("node not found: the scanner's JavaScript tests need Node.js")
	}
	cmd := exec.Command(node, "--test", "test/")
	cmd.Dir = filepath.Join("..", "..", "..", "web", "scanner")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") {
		t.Fatalf("node --test reported failures:\n%s", out)
	}
}
