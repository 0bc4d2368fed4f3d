package chart

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestLint runs `helm lint --strict` for every CI value set.
func TestLint(t *testing.T) {
	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run(name, func(t *testing.T) {
			out, stderr, err := helm(t, "lint", chartDir(), "--strict", "--namespace", namespace, "--kube-version", kubeVersion(t), "--values", file)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s%s", err, out, stderr)
			}
		})
	}
}

// TestTemplate renders every value set and checks the objects each one must (not) contain.
func TestTemplate(t *testing.T) {
	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run(name, func(t *testing.T) {
			m := render(t, file)
			v := valuesOf(t, file)
			operator := boolAt(v, "operator", "enabled")
			extPG := boolAt(v, "postgres", "external", "enabled")
			extKafka := boolAt(v, "kafka", "external", "enabled")

			wantDeployments := []string{"gateway", "user", "event", "ticket", "notification"}
			if operator {
				wantDeployments = append(wantDeployments, "operator")
			}
			if got := len(m.ofKind("Deployment")); got != len(wantDeployments) {
				t.Errorf("%d Deployments, want %d", got, len(wantDeployments))
			}
			for _, c := range wantDeployments {
				d := m.named("Deployment", "sbor-"+c)
				if d == nil {
					t.Errorf("no Deployment sbor-%s", c)
					continue
				}
				if m.named("Service", "sbor-"+c) == nil {
					t.Errorf("no Service sbor-%s", c)
				}
				if m.named("ConfigMap", "sbor-"+c) == nil {
					t.Errorf("no ConfigMap sbor-%s", c)
				}
			}
			wantCount(t, m, "Cluster", map[bool]int{true: 0, false: 4}[extPG])
			wantCount(t, m, "Kafka", map[bool]int{true: 0, false: 1}[extKafka])
			wantCount(t, m, "KafkaNodePool", map[bool]int{true: 0, false: 1}[extKafka])
			wantCount(t, m, "Ingress", map[bool]int{true: 1, false: 0}[boolAt(v, "ingress", "enabled")])
			wantCount(t, m, "Role", map[bool]int{true: 1, false: 0}[operator])
			wantCount(t, m, "Secret", map[bool]int{true: 0, false: 1}[lookup(v, "jwt", "existingSecret") != ""])
			if boolAt(v, "ingress", "tls", "enabled") {
				ing := m.ofKind("Ingress")[0]
				if tls, _, _ := unstructured.NestedSlice(ing.Object, "spec", "tls"); len(tls) != 1 {
					t.Errorf("ingress TLS enabled but spec.tls = %v", tls)
				}
			}
		})
	}
}

func wantCount(t *testing.T, m manifests, kind string, want int) {
	t.Helper()
	if got := len(m.ofKind(kind)); got != want {
		t.Errorf("%d %s objects, want %d", got, kind, want)
	}
}

// TestSchemaRejectsBadValues proves values.schema.json refuses unknown keys, wrong types and
// incomplete external settings, and accepts the value sets it should.
func TestSchemaRejectsBadValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // part of helm's error
	}{
		{"unknown top-level key", []string{"--set", "replicaCount=2"}, "additional properties 'replicaCount' not allowed"},
		{"unknown nested key", []string{"--set", "gateway.replica=2"}, "additional properties 'replica' not allowed"},
		{"misspelled ingress key", []string{"--set", "ingress.hostname=x"}, "additional properties 'hostname' not allowed"},
		{"string for an integer", []string{"--set-string", "gateway.replicas=two"}, "gateway/replicas"},
		{"integer for a boolean", []string{"--set", "networkPolicy.enabled=1"}, "networkPolicy/enabled"},
		{"string for a list", []string{"--set", "gateway.trustedProxies=10.0.0.0/8"}, "gateway/trustedProxies"},
		{"negative replicas", []string{"--set", "user.replicas=-1"}, "user/replicas"},
		{"bad duration", []string{"--set", "reminders.lead=tomorrow"}, "reminders/lead"},
		{"bad log level", []string{"--set", "log.level=loud"}, "log/level"},
		{"bad CIDR", []string{"--set", "networkPolicy.kubeAPIServer.cidrs={apiserver}"}, "kubeAPIServer/cidrs"},
		{"external postgres without secrets", []string{"--set", "postgres.external.enabled=true"}, "secretName"},
		{"external kafka without servers", []string{"--set", "kafka.external.enabled=true"}, "bootstrapServers"},
		{"tls without a secret", []string{"--set", "ingress.tls.enabled=true"}, "secretName"},
		{"env var without a name", []string{"--set", "extraEnv[0].value=x"}, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"template", releaseName, chartDir(), "--namespace", namespace, "--kube-version", kubeVersion(t)}, tc.args...)
			_, stderr, err := helm(t, args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; the schema should refuse it", tc.args)
			}
			if !strings.Contains(stderr, "values don't meet the specifications of the schema") {
				t.Fatalf("failed, but not on the schema:\n%s", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("error does not mention %q:\n%s", tc.want, stderr)
			}
		})
	}
	t.Run("accepts a complete override", func(t *testing.T) {
		_, stderr, err := helm(t, "template", releaseName, chartDir(), "--namespace", namespace, "--kube-version", kubeVersion(t),
			"--set", "gateway.replicas=3,kafka.topics.replicationFactor=2,reminders.lead=1h30m",
			"--set", "networkPolicy.kubeAPIServer.cidrs={10.0.0.1/32}")
		if err != nil {
			t.Fatalf("valid values refused: %v\n%s", err, stderr)
		}
	})
}

// TestChartCopiesOfOperatorFiles fails when charts/sbor/crds or files/rbac/role.yaml differ
// from what controller-gen wrote into config/ (fix: hack/sync-chart-crds.sh).
func TestChartCopiesOfOperatorFiles(t *testing.T) {
	cmd := exec.Command(filepath.Join(repoRoot(), "hack", "sync-chart-crds.sh"), "--check")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("chart copies are stale: %v\n%s", err, out.String())
	}
	crds, _ := filepath.Glob(filepath.Join(chartDir(), "crds", "*.yaml"))
	found := false
	for _, f := range crds {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("name: eventlifecycles.sbor.dev")) {
			found = true
		}
	}
	if !found {
		t.Errorf("charts/sbor/crds holds no eventlifecycles.sbor.dev CRD (files: %v)", crds)
	}
}

// TestGolden compares the default render with testdata/default.golden.yaml, so that every
// change to the rendered output shows up in review. The generated signing key, which differs
// on every render, is masked, and the operator's RBAC is left out: it follows
// config/rbac/role.yaml, which TestOperatorRBAC compares it with.
// Regenerate with: go test ./test/chart -run TestGolden -update
func TestGolden(t *testing.T) {
	out, stderr, err := helm(t, "template", releaseName, chartDir(), "--namespace", namespace, "--kube-version", kubeVersion(t),
		"--values", valueSets(t)["default"])
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	got := maskGenerated(out)
	golden := filepath.Join("testdata", "default.golden.yaml")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if got != string(want) {
		t.Fatalf("rendered output differs from %s; review the change and run with -update.\n%s",
			golden, firstDifference(string(want), got))
	}
}

var generatedKey = regexp.MustCompile(`(?m)^(  signing-key\.pem: ).+$`)

func maskGenerated(s string) string {
	docs := strings.Split(s, "\n---\n")
	kept := docs[:0]
	for _, d := range docs {
		if !strings.Contains(d, "# Source: sbor/templates/operator-rbac.yaml") {
			kept = append(kept, d)
		}
	}
	return generatedKey.ReplaceAllString(strings.Join(kept, "\n---\n"), "${1}<generated Ed25519 key>")
}

func firstDifference(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  golden:   " + w + "\n  rendered: " + g
		}
	}
	return ""
}
