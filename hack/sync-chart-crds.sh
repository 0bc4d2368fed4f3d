#!/usr/bin/env bash
# Copy what controller-gen generates for the operator into the Helm chart:
#   config/crd/bases/*.yaml  -> charts/sbor/crds/          (Helm installs these before the chart)
#   config/rbac/role.yaml    -> charts/sbor/files/rbac/role.yaml  (the chart's operator Role is built from it)
# Run it after `controller-gen` (make generate). With --check it changes nothing and fails
# when the chart's copies differ from config/ (test/chart runs the same comparison).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src_crds="$root/config/crd/bases"
dst_crds="$root/charts/sbor/crds"
src_role="$root/config/rbac/role.yaml"
dst_role="$root/charts/sbor/files/rbac/role.yaml"

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

shopt -s nullglob
crds=("$src_crds"/*.yaml)
if [[ ${#crds[@]} -eq 0 ]]; then
  echo "sync-chart-crds: no CRDs in ${src_crds#"$root/"} (run controller-gen first)" >&2
  exit 1
fi
if [[ ! -f "$src_role" ]]; then
  echo "sync-chart-crds: ${src_role#"$root/"} is missing (run controller-gen first)" >&2
  exit 1
fi

stale=0
report() { echo "sync-chart-crds: $*" >&2; stale=1; }

# Every source file has an identical copy in the chart...
for src in "${crds[@]}" "$src_role"; do
  if [[ "$src" == "$src_role" ]]; then dst="$dst_role"; else dst="$dst_crds/$(basename "$src")"; fi
  if ! cmp -s "$src" "$dst"; then
    if $check; then
      report "${dst#"$root/"} differs from ${src#"$root/"}"
    else
      mkdir -p "$(dirname "$dst")"
      cp "$src" "$dst"
      echo "sync-chart-crds: updated ${dst#"$root/"}" >&2
    fi
  fi
done
# ...and the chart carries no CRD that config/ no longer generates.
for dst in "$dst_crds"/*; do
  if [[ ! -f "$src_crds/$(basename "$dst")" ]]; then
    if $check; then
      report "${dst#"$root/"} has no source in ${src_crds#"$root/"}"
    else
      rm -f "$dst"
      echo "sync-chart-crds: removed ${dst#"$root/"}" >&2
    fi
  fi
done

if [[ $stale -ne 0 ]]; then
  echo "sync-chart-crds: run hack/sync-chart-crds.sh to update the chart" >&2
  exit 1
fi
