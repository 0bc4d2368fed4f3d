#!/usr/bin/env bash
# Build a Go tool once per version into the shared tool cache and print its path.
#
# Usage: hack/tools/gotool.sh NAME PACKAGE VERSION [LDFLAGS]
#   e.g. hack/tools/gotool.sh staticcheck honnef.co/go/tools/cmd/staticcheck v0.8.2
#
# The binary ends up at ${XDG_CACHE_HOME:-$HOME/.cache}/sbor/tools/NAME-VERSION/NAME,
# outside the clone, so fresh clones and CI on the same machine reuse it.
# stdout carries only that path; progress goes to stderr.
#
# The tool is built with `go install PACKAGE@VERSION` outside any module, so the
# repo's go.mod/go.sum are never read or touched. If the tool's module has
# replace/exclude directives (which `go install pkg@version` refuses), it is built
# instead from a throwaway module that requires it. LDFLAGS, if given, is passed as
# -ldflags (e.g. the -X version stamps a project's own release build sets).
#
# The build happens in a temporary directory beside the final one that is renamed
# into place only when complete, so an interrupted build is simply redone.
# Stamps record the Go toolchain and LDFLAGS used: a different `go` or LDFLAGS rebuilds
# the tool (analysers such as staticcheck must be built with a Go at least as new as the code).
set -euo pipefail

if [[ $# -lt 3 || $# -gt 4 ]]; then
  echo "usage: $0 NAME PACKAGE VERSION [LDFLAGS]" >&2
  exit 2
fi
name=$1 pkg=$2 version=$3 ldflags=${4:-}

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/sbor/tools"
dest="$cache_root/$name-$version"
bin="$dest/$name"
goversion=$(go env GOVERSION)

is_current() {
  [[ -x "$bin" && -f "$dest/.go-version" && "$(cat "$dest/.go-version")" == "$goversion" ]] || return 1
  local built_ldflags=""
  [[ ! -f "$dest/.ldflags" ]] || built_ldflags=$(cat "$dest/.ldflags")
  [[ "$built_ldflags" == "$ldflags" ]]
}

if is_current; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache_root"
# Serialise concurrent builds of the same tool (e.g. parallel make targets).
exec 9>"$cache_root/.$name-$version.lock"
flock 9
if is_current; then
  echo "$bin"
  exit 0
fi

# Leftovers of builds that were killed (no other build of this version runs while we hold the lock).
rm -rf "$cache_root/.$name-$version".{tmp,old}.*

tmp=$(mktemp -d "$cache_root/.$name-$version.tmp.XXXXXX")
old=""
cleanup() { rm -rf "$tmp" ${old:+"$old"}; }
trap cleanup EXIT

# Outside any module and workspace; GOFLAGS from the caller is kept (e.g. -buildvcs=false).
export GOWORK=off
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
jobs="${SBOR_BUILD_JOBS:-2}"
buildflags=(-p "$jobs" -trimpath)
[[ -z "$ldflags" ]] || buildflags+=(-ldflags "$ldflags")

echo "gotool: building $name from $pkg@$version with $goversion" >&2
start=$SECONDS
log="$tmp/install.log"
set +e
(cd "$tmp" && GOBIN="$tmp/bin" go install "${buildflags[@]}" "$pkg@$version" 2>&1) | tee "$log" >&2
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ne 0 ]]; then
  if grep -qE 'contains replace directives|contains exclude directives|must not contain directives' "$log"; then
    echo "gotool: $pkg@$version cannot be go-installed directly; building from a temporary module" >&2
    mkdir -p "$tmp/mod"
    (
      cd "$tmp/mod"
      go mod init sbor.local/gotool-"$name" 2>/dev/null
      go get "$pkg@$version" >&2
      go build "${buildflags[@]}" -o "$tmp/bin/$name" "$pkg"
    )
  else
    exit 1
  fi
fi

built=("$tmp"/bin/*)
if [[ ${#built[@]} -ne 1 || ! -x "${built[0]}" ]]; then
  echo "gotool: expected exactly one binary from $pkg, got: ${built[*]}" >&2
  exit 1
fi
mkdir -p "$tmp/out"
mv "${built[0]}" "$tmp/out/$name"
echo "$goversion" >"$tmp/out/.go-version"
[[ -z "$ldflags" ]] || echo "$ldflags" >"$tmp/out/.ldflags"
echo "$pkg@$version" >"$tmp/out/.source"

if [[ -e "$dest" ]]; then
  # Stale (other Go version or LDFLAGS): move it aside, then swap in the new one.
  old=$(mktemp -u "$cache_root/.$name-$version.old.XXXXXX")
  mv -T "$dest" "$old"
fi
mv -T "$tmp/out" "$dest"
echo "gotool: $name ready in $((SECONDS - start))s" >&2
echo "$bin"
