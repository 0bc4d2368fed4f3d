#!/usr/bin/env bash
# What the browser test (test/browser) needs, installed by version into the user's cache:
#   - playwright-core, pinned by test/browser/package-lock.json, into
#     ${XDG_CACHE_HOME:-~/.cache}/sbor/playwright/<version> (npm ci; Playwright's own browser
#     download is never used: it cannot work on a closed network);
#   - Debian's Chromium at /usr/bin/chromium, with apt-get when it is missing (root only).
# Prints the playwright directory (holding node_modules/playwright-core) on its last line.
#
#   hack/browser-deps.sh                 both
#   hack/browser-deps.sh --playwright    playwright-core only (what the Go test calls)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
spec="$root/test/browser"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "browser-deps: Node.js and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

if [ "${1:-}" != "--playwright" ] && [ ! -x "${SBOR_CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "browser-deps: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium >&2
  else
    echo "browser-deps: ${SBOR_CHROMIUM:-/usr/bin/chromium} is missing; as root run: apt-get install chromium (or set SBOR_CHROMIUM)" >&2
    exit 1
  fi
fi

version=$(node -p 'require(process.argv[1]).packages["node_modules/playwright-core"].version' "$spec/package-lock.json")
dir="${XDG_CACHE_HOME:-$HOME/.cache}/sbor/playwright/$version"
if [ ! -f "$dir/node_modules/playwright-core/package.json" ] || ! cmp -s "$spec/package-lock.json" "$dir/package-lock.json"; then
  echo "browser-deps: installing playwright-core $version into $dir" >&2
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp "$spec/package.json" "$spec/package-lock.json" "$tmp/"
  # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing, but be explicit.
  (cd "$tmp" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
echo "$dir"
