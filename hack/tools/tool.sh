#!/usr/bin/env bash
# Print the path of a pinned tool, building it into the shared cache on first use.
#
# Usage: hack/tools/tool.sh NAME    (controller-gen | staticcheck | govulncheck | helm)
#   e.g. "$(hack/tools/tool.sh helm)" version
# Versions and packages come from hack/tools/versions.env.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$here/versions.env"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 NAME   (controller-gen | staticcheck | govulncheck | helm)" >&2
  exit 2
fi

case "$1" in
  controller-gen) exec "$here/gotool.sh" controller-gen "$CONTROLLER_GEN_PKG" "$CONTROLLER_GEN_VERSION" ;;
  staticcheck)    exec "$here/gotool.sh" staticcheck "$STATICCHECK_PKG" "$STATICCHECK_VERSION" ;;
  govulncheck)    exec "$here/gotool.sh" govulncheck "$GOVULNCHECK_PKG" "$GOVULNCHECK_VERSION" ;;
  helm)
    # The -X stamps helm's Makefile sets for a release build.
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
      ldflags+=" -X $p.k8sVersionMajor=${HELM_KUBE_VERSION%%.*} -X $p.k8sVersionMinor=${HELM_KUBE_VERSION#*.}"
    done
    exec "$here/gotool.sh" helm "$HELM_PKG" "$HELM_VERSION" "$ldflags"
    ;;
  *)
    echo "tool.sh: unknown tool '$1' (controller-gen | staticcheck | govulncheck | helm)" >&2
    exit 2
    ;;
esac
