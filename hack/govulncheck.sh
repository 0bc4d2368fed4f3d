#!/usr/bin/env bash
# govulncheck over the module (make lint), against a Go vulnerability database built on this
# machine. vuln.go.dev cannot be reached from here (only package registries can), but the
# Go module proxy serves golang.org/x/vulndb, whose data/osv holds every report as OSV JSON;
# its own cmd/indexdb turns that folder into the v1 database govulncheck reads with
# -db file://DIR. The database is built once per vulndb version into
# ${XDG_CACHE_HOME:-$HOME/.cache}/sbor/vulndb/<version>/, outside the clone.
#
#   hack/govulncheck.sh                 # ./... ; exit 3 when called code is affected
#   hack/govulncheck.sh -show verbose ./...
#   VULNDB_VERSION=v0.0.0-... hack/govulncheck.sh   # a newer snapshot of the database
#
# Standard-library findings are fixed by a newer Go toolchain, not by go.mod: the scan
# reports against the `go` on PATH (GOTOOLCHAIN selects another).
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/toolchain.sh

# A snapshot of golang.org/x/vulndb (bump it to see newer reports).
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
db="${XDG_CACHE_HOME:-$HOME/.cache}/sbor/vulndb/$VULNDB_VERSION"

if [[ ! -f "$db/index/modules.json" ]]; then
  echo "govulncheck.sh: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Outside the repository, so its go.mod and go.sum are never touched.
  src=$(cd "$work" && GOFLAGS= go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$src/data/osv" ]] || { echo "govulncheck.sh: no data/osv in golang.org/x/vulndb@$VULNDB_VERSION" >&2; exit 1; }
  indexdb=$(hack/tools/gotool.sh indexdb golang.org/x/vulndb/cmd/indexdb "$VULNDB_VERSION")
  "$indexdb" -vulns "$src/data/osv" -out "$work/db"
  # indexdb leaves the database's modification time at zero; govulncheck prints it, so
  # record the snapshot's commit time (the pseudo-version's timestamp).
  stamp=$(sed -n 's/^v0\.0\.0-\([0-9]\{14\}\)-.*/\1/p' <<<"$VULNDB_VERSION")
  if [[ -n "$stamp" ]]; then
    printf '{"modified":"%s-%s-%sT%s:%s:%sZ"}' "${stamp:0:4}" "${stamp:4:2}" "${stamp:6:2}" "${stamp:8:2}" "${stamp:10:2}" "${stamp:12:2}" >"$work/db/index/db.json"
    gzip -9 -n -c "$work/db/index/db.json" >"$work/db/index/db.json.gz"
  fi
  echo "govulncheck.sh: $(ls "$work/db/ID" | wc -l) reports" >&2
  mkdir -p "$(dirname "$db")"
  rm -rf "$db.tmp"
  mv "$work/db" "$db.tmp"
  mv "$db.tmp" "$db"
fi

govulncheck=$(hack/tools/tool.sh govulncheck)
if [[ $# -eq 0 ]]; then
  set -- ./...
fi
exec "$govulncheck" -db "file://$db" "$@"
