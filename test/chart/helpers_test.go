package chart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// releaseName and namespace of every render; the names in expectations derive from them.
	releaseName = "sbor"
	namespace   = "sbor-test"
)

// repoRoot is the directory holding go.mod.
var repoRoot = sync.OnceValue(func() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("go.mod not found above the test directory")
		}
		dir = parent
	}
})

func chartDir() string { return filepath.Join(repoRoot(), "charts", "sbor") }

// valueSets are the chart's CI value files (charts/sbor/ci/*-values.yaml), by short name.
func valueSets(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir(), "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no value sets in charts/sbor/ci: %v", err)
	}
	sets := map[string]string{}
	for _, f := range files {
		sets[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = f
	}
	return sets
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// toolPath runs one of the repo's tool scripts (which build on first use into a shared
// cache) unless env names a binary already.
func toolPath(env string, script ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	cmd := exec.Command(filepath.Join(repoRoot(), script[0]), script[1:]...)
	cmd.Dir = repoRoot()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(script, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

var helmBinary = sync.OnceValues(func() (string, error) {
	return toolPath("SBOR_HELM", "hack/tools/tool.sh", "helm")
})

// helm runs the pinned helm with its state in a throwaway home, so a developer's own helm
// repositories and plugins play no part.
func helm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, err := helmBinary()
	if err != nil {
		t.Fatalf("helm: %v", err)
	}
	home := helmHome(t)
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

var (
	helmHomeOnce sync.Once
	helmHomeDir  string
)

func helmHome(t *testing.T) string {
	helmHomeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sbor-chart-helm-")
		if err != nil {
			t.Fatal(err)
		}
		helmHomeDir = dir
	})
	return helmHomeDir
}

// kubeVersion is the Kubernetes version renders and lints assume: that of the envtest API
// server the objects are then submitted to (ENVTEST_K8S_VERSION in hack/tools/versions.env),
// whatever helm's own default is.
var kubeVersionOnce = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "hack", "tools", "versions.env"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ENVTEST_K8S_VERSION="); ok {
			return "v" + strings.Trim(v, `"' `), nil
		}
	}
	return "", fmt.Errorf("no ENVTEST_K8S_VERSION in hack/tools/versions.env")
})

func kubeVersion(t *testing.T) string {
	t.Helper()
	v, err := kubeVersionOnce()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// manifests are the objects of one render.
type manifests []*unstructured.Unstructured

var (
	renderMu    sync.Mutex
	renderCache = map[string]manifests{}
)

// render runs `helm template` for a value file (cached per file) and parses every object.
func render(t *testing.T, valuesFile string, extra ...string) manifests {
	t.Helper()
	key := valuesFile + "\x00" + strings.Join(extra, "\x00")
	renderMu.Lock()
	defer renderMu.Unlock()
	if m, ok := renderCache[key]; ok {
		return m
	}
	args := []string{"template", releaseName, chartDir(), "--namespace", namespace, "--kube-version", kubeVersion(t), "--values", valuesFile}
	args = append(args, extra...)
	out, stderr, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	m, err := parseManifests(out)
	if err != nil {
		t.Fatalf("parse rendered manifests of %s: %v", valuesFile, err)
	}
	renderCache[key] = m
	return m
}

func parseManifests(text string) (manifests, error) {
	var out manifests
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		if len(bytes.TrimSpace(js)) == 0 || string(js) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(js, &u.Object); err != nil {
			return nil, err
		}
		if u.GetKind() == "" {
			return nil, fmt.Errorf("object without kind:\n%s", doc)
		}
		out = append(out, u)
	}
}

func (m manifests) ofKind(kind string) manifests {
	var out manifests
	for _, u := range m {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

func (m manifests) named(kind, name string) *unstructured.Unstructured {
	for _, u := range m {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// typed converts an unstructured object into its Go type.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

// valuesOf reads a value file merged over the chart's defaults, as far as the tests need
// to know what a render should contain (helm itself is the authority on merging; this is a
// plain deep merge of maps, which is what helm does for these files).
func valuesOf(t *testing.T, file string) map[string]any {
	t.Helper()
	defaults := readYAMLMap(t, filepath.Join(chartDir(), "values.yaml"))
	return mergeMaps(defaults, readYAMLMap(t, file))
}

func readYAMLMap(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

func mergeMaps(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = mergeMaps(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// lookup walks a path of map keys.
func lookup(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func boolAt(m map[string]any, path ...string) bool {
	b, _ := lookup(m, path...).(bool)
	return b
}
