#!/usr/bin/env bash
# The chart's tests (make chart-test): for every value set under charts/sbor/ci, helm lint and
# helm template; then the Go tests in test/chart, which check the rendered manifests' security
# properties and submit every object to a real kube-apiserver (envtest) with the
# CloudNativePG CRDs and the Strimzi stand-in installed.
#
# helm and the envtest binaries are built from their Go modules into the shared tool cache on
# first use (hack/tools/tool.sh, hack/envtest/assets.sh). Extra arguments go to `go test`
# (e.g. -run TestNetworkPolicyPaths -v).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source hack/lib/toolchain.sh

helm=$(hack/tools/tool.sh helm)
# shellcheck source=tools/versions.env
source hack/tools/versions.env
# Renders and lints assume the version of the envtest API server the objects are applied to.
kube_version="v$ENVTEST_K8S_VERSION"
KUBEBUILDER_ASSETS=$(hack/envtest/assets.sh)
export SBOR_HELM="$helm" KUBEBUILDER_ASSETS

# helm keeps its state in a throwaway home: a developer's repositories and plugins play no part.
helm_home=$(mktemp -d)
trap 'rm -rf "$helm_home"' EXIT
export HELM_CACHE_HOME="$helm_home/cache" HELM_CONFIG_HOME="$helm_home/config" HELM_DATA_HOME="$helm_home/data"

echo "chart-test: $("$helm" version --short)" >&2
hack/sync-chart-crds.sh --check

shopt -s nullglob
value_sets=(charts/sbor/ci/*-values.yaml)
if [[ ${#value_sets[@]} -eq 0 ]]; then
  echo "chart-test: no value sets in charts/sbor/ci" >&2
  exit 1
fi
for values in "${value_sets[@]}"; do
  echo "chart-test: lint and template with ${values#charts/sbor/}" >&2
  if ! lint=$("$helm" lint charts/sbor --strict --namespace sbor --kube-version "$kube_version" --values "$values" 2>&1); then
    echo "$lint" >&2
    exit 1
  fi
  count=$("$helm" template sbor charts/sbor --namespace sbor --kube-version "$kube_version" --values "$values" | grep -c '^kind: ')
  echo "chart-test:   $count objects" >&2
done

# make test runs test/chart with every other package; it sets CHART_TEST_GO=0 here.
if [[ "${CHART_TEST_GO:-1}" != 0 ]]; then
  go test -count=1 ./test/chart/... "$@"
fi
