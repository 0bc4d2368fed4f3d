#!/usr/bin/env bash
# Delete the kind cluster of hack/kind-up.sh (make kind-down), with everything in it.
#   SBOR_KIND_CLUSTER  cluster name (default sbor)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cluster="${SBOR_KIND_CLUSTER:-sbor}"

command -v docker >/dev/null || { echo "kind-down: docker is required" >&2; exit 1; }
kind_version=$(go list -m -f '{{.Version}}' sigs.k8s.io/kind)
kind=$(hack/tools/gotool.sh kind sigs.k8s.io/kind "$kind_version")

if "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then
  "$kind" delete cluster --name "$cluster"
else
  echo "kind-down: no kind cluster named $cluster" >&2
fi
