// Package testenv starts the operator's test control plane: controller-runtime's envtest with a
// real kube-apiserver and etcd, built from their Go modules by hack/envtest/assets.sh, and the
// EventLifecycle CRD from config/crd/bases.
//
// KUBEBUILDER_ASSETS, when set, points at the binaries; otherwise Start runs
// hack/envtest/assets.sh itself (a no-op once they are in the cache), so `go test
// ./operator/...` works on its own.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	// RepoRoot is the repository's root directory.
	RepoRoot string
	// AssetsDir holds kube-apiserver, etcd and kubectl.
	AssetsDir string
}

// Options choose extra CRDs.
type Options struct {
	// StrimziStandIn also installs test/crds/strimzi-standin at start.
	StrimziStandIn bool
}

// Start starts kube-apiserver and etcd and installs the operator's CRD.
func Start(opts Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := Assets(root)
	if err != nil {
		return nil, err
	}
	crdDirs := []string{filepath.Join(root, "config", "crd", "bases")}
	if opts.StrimziStandIn {
		crdDirs = append(crdDirs, StrimziStandInDir(root))
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("envtest: %w", err)
	}
	return &Env{Environment: env, Config: cfg, RepoRoot: root, AssetsDir: assets}, nil
}

// StrimziStandInDir holds the stand-in Strimzi CRDs.
func StrimziStandInDir(root string) string {
	return filepath.Join(root, "test", "crds", "strimzi-standin")
}

// Assets returns the directory with kube-apiserver and etcd: KUBEBUILDER_ASSETS, or the cache
// that hack/envtest/assets.sh fills (building the binaries on first use, several minutes).
func Assets(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "envtest", "assets.sh"))
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/envtest/assets.sh: %w", err)
	}
	dir := strings.TrimSpace(out.String())
	if dir == "" {
		return "", errors.New("hack/envtest/assets.sh printed no directory")
	}
	return dir, nil
}

// RepoRoot finds the repository root: the nearest directory upwards with go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
