#!/usr/bin/env bash
# make fuzz: run every Go fuzz target of the repository for a short while (FUZZTIME each,
# default 5s). `go test ./...` already runs each target's seed corpus (the f.Add seeds and
# the files under testdata/fuzz/<Target>/) as ordinary tests; this adds real fuzzing on top.
# Targets are found, not listed: any `func FuzzXxx` in a _test.go file is fuzzed.
#
#   hack/fuzz.sh                  # every target, 5s each
#   FUZZTIME=1m hack/fuzz.sh      # longer
#   hack/fuzz.sh ./services/user  # the targets of some packages only
#
# A failing input is written by go test to testdata/fuzz/<Target>/ in its package: commit
# it with the fix, and it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/toolchain.sh
fuzztime=${FUZZTIME:-5s}
start=$(date +%s)

if [ $# -gt 0 ]; then
  dirs=("$@")
else
  mapfile -t dirs < <(find . -name '*_test.go' -not -path './.git/*' -not -path './.dev/*' -not -path '*/node_modules/*' \
    -exec grep -l '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' {} + | xargs -r -n1 dirname | sort -u)
fi

count=0
failed=()
for dir in "${dirs[@]}"; do
  dir=./${dir#./}
  mapfile -t targets < <(grep -ho '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' "$dir"/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | sort -u)
  for target in "${targets[@]}"; do
    echo "==> $dir $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$dir"; then
      failed+=("$dir $target")
    fi
    count=$((count + 1))
  done
done

echo "==> fuzzed $count targets for $fuzztime each in $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
