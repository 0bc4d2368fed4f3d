#!/usr/bin/env bash
# Build the envtest control plane (kube-apiserver, etcd, kubectl) from Go modules
# into the shared tool cache and print the directory, for KUBEBUILDER_ASSETS or
# envtest.Environment{BinaryAssetsDirectory: ...}.
#
# Usage: hack/envtest/assets.sh
#   export KUBEBUILDER_ASSETS="$(hack/envtest/assets.sh)"
#
# Versions come from hack/tools/versions.env (ENVTEST_K8S_VERSION, ENVTEST_ETCD_VERSION).
# Result: ${XDG_CACHE_HOME:-$HOME/.cache}/sbor/tools/envtest-<k8s version>/
#   kube-apiserver, kubectl  from k8s.io/kubernetes v<k8s version>
#   etcd                     from go.etcd.io/etcd/server/v3 v<etcd version> (the version
#                            that Kubernetes release pins; checked against its build/dependencies.yaml)
#   src/                     the go.mod/go.sum each binary was built from
#
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the k8s.io/* staging
# modules with ./staging paths), so it is built from a temporary module that requires it
# and replaces every staging module with its published v0.<minor>.<patch> release.
# go.etcd.io/etcd/server/v3 has replace directives too and is built the same way.
#
# Everything is built in a temporary directory that is renamed into place when complete,
# so an interrupted build is redone. stdout carries only the directory; progress goes to stderr.
# A cold build takes several minutes on two cores; SBOR_BUILD_JOBS sets `go build -p` (default 2).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tools/versions.env
source "$here/../tools/versions.env"

k8s_version=$ENVTEST_K8S_VERSION     # e.g. 1.37.2
etcd_version=$ENVTEST_ETCD_VERSION   # e.g. 3.7.0
staging_version="v0.${k8s_version#*.}" # 1.37.2 -> v0.37.2
binaries=(kube-apiserver etcd kubectl)

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/sbor/tools"
dest="$cache_root/envtest-$k8s_version"

is_complete() {
  local b
  for b in "${binaries[@]}"; do
    [[ -x "$dest/$b" ]] || return 1
  done
}

if is_complete; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.envtest-$k8s_version.lock"
flock 9
if is_complete; then
  echo "$dest"
  exit 0
fi

# Leftovers of builds that were killed (no other build of this version runs while we hold the lock).
rm -rf "$cache_root/.envtest-$k8s_version".{tmp,old}.*

tmp=$(mktemp -d "$cache_root/.envtest-$k8s_version.tmp.XXXXXX")
old=""
cleanup() { rm -rf "$tmp" ${old:+"$old"}; }
trap cleanup EXIT

export GOWORK=off
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
export CGO_ENABLED=0 # kube-apiserver and etcd are released as static binaries
jobs="${SBOR_BUILD_JOBS:-2}"
mkdir -p "$tmp/out" "$tmp/src/kubernetes" "$tmp/src/etcd"

log() { echo "envtest: $*" >&2; }
total_start=$SECONDS

# --- kube-apiserver and kubectl from k8s.io/kubernetes -------------------------------
cd "$tmp/src/kubernetes"
go mod init sbor.local/envtest-kubernetes 2>/dev/null
log "resolving k8s.io/kubernetes v$k8s_version"
kube_gomod=$(go mod download -json "k8s.io/kubernetes@v$k8s_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f "$kube_gomod" ]] || { log "cannot find go.mod of k8s.io/kubernetes v$k8s_version"; exit 1; }

# Staging modules: replaced with ./staging/... in Kubernetes' go.mod and required there as v0.0.0.
edits=("-require=k8s.io/kubernetes@v$k8s_version")
count=0
while read -r mod; do
  edits+=("-replace=$mod=$mod@$staging_version")
  count=$((count + 1))
done < <(
  awk '
    $1 == "replace" { $1 = ""; $0 = $0 }
    $2 == "=>" && $3 ~ /^\.\/staging\// { staged[$1] = 1 }
    $2 == "v0.0.0" { req[$1] = 1 }
    END { for (m in staged) if (m in req) print m }
  ' "$kube_gomod" | sort
)
[[ $count -gt 0 ]] || { log "found no staging modules in $kube_gomod"; exit 1; }
# Keep Kubernetes' GODEBUG defaults (e.g. "godebug default=go1.26").
while read -r gd; do
  edits+=("-godebug=$gd")
done < <(awk '$1 == "godebug" && NF == 2 { print $2 }' "$kube_gomod")
go mod edit "${edits[@]}"
log "pinned $count k8s.io staging modules at $staging_version"

step=$SECONDS
log "downloading modules for kube-apiserver and kubectl"
go get "k8s.io/kubernetes/cmd/kube-apiserver@v$k8s_version" "k8s.io/kubernetes/cmd/kubectl@v$k8s_version"
log "modules ready in $((SECONDS - step))s"

# The etcd version must be the one this Kubernetes release pins.
kube_dir=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)
pinned_etcd=$(awk '/name: "etcd"/ { f = 1; next } f && $1 == "version:" { print $2; exit }' "$kube_dir/build/dependencies.yaml")
if [[ "$pinned_etcd" != "$etcd_version" ]]; then
  log "ENVTEST_ETCD_VERSION=$etcd_version but Kubernetes v$k8s_version pins etcd ${pinned_etcd:-?} (build/dependencies.yaml): fix hack/tools/versions.env"
  exit 1
fi

minor=${k8s_version#*.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=v$k8s_version -X $pkg.gitMajor=${k8s_version%%.*} -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

step=$SECONDS
log "building kube-apiserver v$k8s_version (go build -p $jobs; several minutes when cold)"
go build -p "$jobs" -trimpath -ldflags "$ldflags" -o "$tmp/out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
log "kube-apiserver built in $((SECONDS - step))s"

step=$SECONDS
log "building kubectl v$k8s_version"
go build -p "$jobs" -trimpath -ldflags "$ldflags" -o "$tmp/out/kubectl" k8s.io/kubernetes/cmd/kubectl
log "kubectl built in $((SECONDS - step))s"

# --- etcd from go.etcd.io/etcd/server/v3 ---------------------------------------------
cd "$tmp/src/etcd"
go mod init sbor.local/envtest-etcd 2>/dev/null
step=$SECONDS
log "building etcd v$etcd_version"
go get "go.etcd.io/etcd/server/v3@v$etcd_version"
go build -p "$jobs" -trimpath -ldflags "-s -w" -o "$tmp/out/etcd" go.etcd.io/etcd/server/v3
log "etcd built in $((SECONDS - step))s"

# --- install ---------------------------------------------------------------------------
mkdir -p "$tmp/out/src/kubernetes" "$tmp/out/src/etcd"
cp "$tmp/src/kubernetes/go.mod" "$tmp/src/kubernetes/go.sum" "$tmp/out/src/kubernetes/"
cp "$tmp/src/etcd/go.mod" "$tmp/src/etcd/go.sum" "$tmp/out/src/etcd/"
cd "$cache_root"
if [[ -e "$dest" ]]; then
  old=$(mktemp -u "$cache_root/.envtest-$k8s_version.old.XXXXXX")
  mv -T "$dest" "$old"
fi
mv -T "$tmp/out" "$dest"
log "ready in $((SECONDS - total_start))s: $dest"
echo "$dest"
