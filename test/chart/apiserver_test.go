package chart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cnpgVersion is the CloudNativePG release whose CRDs the tests install; hack/kind-up.sh
// installs the same operator version (TestPinnedVersionsAgree keeps them equal).
const cnpgVersion = "v1.29.0"

// strimziStandIn is the minimal structural stand-in for Strimzi's CRDs (DESIGN.md section 7).
func strimziStandIn() string { return filepath.Join(repoRoot(), "test", "crds", "strimzi-standin") }

// prometheusOperatorStandIn is the minimal structural stand-in for the Prometheus Operator's
// ServiceMonitor and PrometheusRule, for the chart's optional monitoring objects.
func prometheusOperatorStandIn() string {
	return filepath.Join(repoRoot(), "test", "chart", "testdata", "prometheus-operator-standin")
}

// cnpgCRDs returns config/crd/bases of the CloudNativePG Go module at cnpgVersion, fetched
// into the module cache by exact version, outside this repository's go.mod.
func cnpgCRDs(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("SBOR_CNPG_CRDS"); dir != "" {
		return dir
	}
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/cloudnative-pg/cloudnative-pg@"+cnpgVersion)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go mod download cloudnative-pg@%s: %v\n%s%s", cnpgVersion, err, out, ee.Stderr)
		}
		t.Fatal(err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Error != "" || mod.Dir == "" {
		t.Fatalf("go mod download cloudnative-pg@%s: %v %s", cnpgVersion, err, mod.Error)
	}
	return filepath.Join(mod.Dir, "config", "crd", "bases")
}

// warnings collects the API server's warnings (Pod Security "warn" mode answers with them).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// TestAgainstAPIServer submits the rendered chart to a real kube-apiserver (envtest) with the
// CloudNativePG CRDs and the Strimzi stand-in installed, in namespaces that enforce Pod
// Security "restricted".
func TestAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	assets, err := toolPath("KUBEBUILDER_ASSETS", "hack/envtest/assets.sh")
	if err != nil {
		t.Fatalf("envtest assets: %v", err)
	}
	if _, err := os.Stat(strimziStandIn()); err != nil {
		t.Fatalf("Strimzi stand-in CRDs: %v", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{cnpgCRDs(t), strimziStandIn(), prometheusOperatorStandIn()},
		ErrorIfCRDPathMissing: true,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop envtest: %v", err)
		}
	})
	t.Logf("kube-apiserver with CRDs up in %s", time.Since(start).Round(time.Millisecond))

	warn := &warnings{}
	cfg.WarningHandlerWithContext = warn
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	t.Run("negative controls", func(t *testing.T) {
		// The dry run must be able to fail: a wrong type in a CloudNativePG Cluster and an
		// unknown field in a Deployment are refused.
		ns := createNamespace(t, ctx, c, "controls")
		bad := []string{
			`{"apiVersion":"postgresql.cnpg.io/v1","kind":"Cluster","metadata":{"name":"bad"},"spec":{"instances":"three","storage":{"size":"1Gi"}}}`,
			`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"x","image":"x","bogus":true}]}}}}`,
		}
		for _, js := range bad {
			u := &unstructured.Unstructured{}
			if err := json.Unmarshal([]byte(js), &u.Object); err != nil {
				t.Fatal(err)
			}
			u.SetNamespace(ns)
			if err := dryRunApply(ctx, c, u); err == nil {
				t.Errorf("dry run accepted an invalid %s", u.GetKind())
			}
		}
		// And Pod Security "restricted" is enforced for Pods in these namespaces.
		pod := &unstructured.Unstructured{}
		_ = json.Unmarshal([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"root"},"spec":{"containers":[{"name":"x","image":"x"}]}}`), &pod.Object)
		pod.SetNamespace(ns)
		if err := dryRunApply(ctx, c, pod); err == nil || !strings.Contains(err.Error(), "PodSecurity") {
			t.Errorf("a pod violating restricted was not refused by Pod Security: %v", err)
		}
		warn.take()
	})

	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run("dry-run/"+name, func(t *testing.T) {
			ns := createNamespace(t, ctx, c, "dry-"+name)
			objects := render(t, file)
			for _, orig := range objects {
				u := orig.DeepCopy()
				id := u.GetKind() + " " + u.GetName()
				mapping, err := c.RESTMapper().RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
				if err != nil {
					t.Errorf("%s: the API server does not know %s: %v", id, u.GroupVersionKind(), err)
					continue
				}
				if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
					u.SetNamespace(ns)
				}
				if err := dryRunApply(ctx, c, u); err != nil {
					t.Errorf("%s refused: %v", id, err)
				}
				for _, w := range warn.take() {
					t.Errorf("%s: API server warning: %s", id, w)
				}
			}
			t.Logf("%d objects accepted", len(objects))
		})
	}

	t.Run("helm install and upgrade", func(t *testing.T) {
		helmInstallUpgrade(t, ctx, env, c)
	})
}

func dryRunApply(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.DryRunAll, client.FieldOwner("sbor-chart-test"), client.ForceOwnership)
}

var nsSuffix = regexp.MustCompile(`[^a-z0-9-]+`)

// createNamespace creates a namespace labelled as the README tells users to label theirs:
// Pod Security "restricted" enforced, and warned about for workload templates.
func createNamespace(t *testing.T, ctx context.Context, c client.Client, name string) string {
	t.Helper()
	name = nsSuffix.ReplaceAllString(strings.ToLower(name), "-")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
		"pod-security.kubernetes.io/warn-version":    "latest",
	}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// helmInstallUpgrade installs the chart for real (without controllers nothing runs, but every
// object is created, the chart's CRD included), then upgrades it: the generated signing key
// must survive the upgrade (lookup) and the uninstall (resource-policy keep).
func helmInstallUpgrade(t *testing.T, ctx context.Context, env *envtest.Environment, c client.Client) {
	user, err := env.AddUser(envtest.User{Name: "helm", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcFile := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcFile, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(t, ctx, c, "helm-release")
	run := func(args ...string) string {
		t.Helper()
		args = append(args, "--kubeconfig", kcFile, "--namespace", ns)
		out, stderr, err := helm(t, args...)
		if err != nil {
			t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	signingKey := func() string {
		t.Helper()
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sbor-jwt"}, &s); err != nil {
			t.Fatalf("signing key Secret: %v", err)
		}
		key := string(s.Data["signing-key.pem"])
		if !strings.HasPrefix(key, "-----BEGIN PRIVATE KEY-----") {
			t.Fatalf("signing key is not a PKCS#8 PEM: %.40q", key)
		}
		return key
	}

	notes := run("install", releaseName, chartDir(), "--values", valueSets(t)["default"])
	if !strings.Contains(notes, "http://sbor.local/api") || !strings.Contains(notes, "helm test") {
		t.Errorf("NOTES do not show the gateway URL and the test command:\n%s", notes)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := c.Get(ctx, client.ObjectKey{Name: "eventlifecycles.sbor.dev"}, &crd); err != nil {
		t.Errorf("helm did not install the chart's CRD: %v", err)
	}
	first := signingKey()

	run("upgrade", releaseName, chartDir(), "--values", valueSets(t)["default"], "--set", "log.level=debug")
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sbor-gateway"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["SBOR_LOG_LEVEL"] != "debug" {
		t.Errorf("upgrade not applied: SBOR_LOG_LEVEL = %q", cm.Data["SBOR_LOG_LEVEL"])
	}
	if signingKey() != first {
		t.Error("helm upgrade replaced the signing key; issued tokens would stop verifying")
	}

	run("uninstall", releaseName)
	if signingKey() != first {
		t.Error("the signing key did not survive uninstall")
	}
	run("install", releaseName, chartDir(), "--values", valueSets(t)["default"])
	if signingKey() != first {
		t.Error("a reinstall replaced the kept signing key")
	}
}

// TestPinnedVersionsAgree: the CloudNativePG version whose CRDs the tests install is the one
// hack/kind-up.sh installs.
func TestPinnedVersionsAgree(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "hack", "kind-up.sh"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`CNPG_VERSION="${CNPG_VERSION:-%s}"`, strings.TrimPrefix(cnpgVersion, "v"))
	if !strings.Contains(string(b), want) {
		t.Errorf("hack/kind-up.sh does not pin %s", want)
	}
}
