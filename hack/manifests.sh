#!/usr/bin/env bash
# Regenerate what controller-gen derives from the operator's Go code:
#   - config/crd/bases/sbor.dev_eventlifecycles.yaml   (from operator/api/v1alpha1 markers)
#   - config/rbac/role.yaml                            (ClusterRole sbor-operator, from +kubebuilder:rbac markers)
#   - operator/api/v1alpha1/zz_generated.deepcopy.go   (DeepCopy methods)
# controller-gen is built from its Go module into the shared tool cache by hack/tools/tool.sh.
# The output is deterministic: running this twice leaves no diff (`make manifests generate`
# followed by `git diff --exit-code` is what CI can check).
#
# Usage: hack/manifests.sh [manifests|generate|all]   (default all)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
controller_gen=$(hack/tools/tool.sh controller-gen)

what=${1:-all}
case "$what" in
  manifests | generate | all) ;;
  *)
    echo "usage: $0 [manifests|generate|all]" >&2
    exit 2
    ;;
esac

if [[ $what == generate || $what == all ]]; then
  "$controller_gen" object paths=./operator/api/...
fi

if [[ $what == manifests || $what == all ]]; then
  "$controller_gen" rbac:roleName=sbor-operator crd webhook paths=./operator/... \
    output:crd:artifacts:config=config/crd/bases \
    output:rbac:artifacts:config=config/rbac
fi
