#!/usr/bin/env bash
# Rebuilds the scanner page (web/scanner) into services/gateway/scanner/dist, which the
# gateway embeds; commit the result. Deterministic: the pinned esbuild and the lock file give
# the same bytes every time. With --check it rebuilds into a temporary folder and fails when
# the committed build is stale, and runs the page's JavaScript unit tests.
#
#   hack/scanner-build.sh           rebuild
#   hack/scanner-build.sh --check   verify the committed build, run node --test
set -euo pipefail
cd "$(dirname "$0")/../web/scanner"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "scanner-build: Node.js and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

# npm ci installs exactly the lock file; skip it when node_modules already matches.
stamp=node_modules/.sbor-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--check" ]; then
  node build.mjs --check
  node --test test/
else
  node build.mjs
fi
