#!/usr/bin/env bash
# make test: one PostgreSQL and one Apache Kafka for the whole run (hack/testenv), every Go
# test package against them. CI sets SBOR_REQUIRE_KAFKA=1 so a missing broker fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/toolchain.sh
start=$(date +%s)

echo "==> gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
go vet ./...

echo "==> govulncheck: no known vulnerability in called code"
hack/govulncheck.sh

echo "==> tools: envtest control plane and helm (built once per version into the user's cache)"
KUBEBUILDER_ASSETS=$(hack/envtest/assets.sh)
SBOR_HELM=$(hack/tools/tool.sh helm)
export KUBEBUILDER_ASSETS SBOR_HELM

echo "==> browser test dependencies: Debian's Chromium and playwright-core (cached by version)"
if ! hack/browser-deps.sh >/dev/null; then
  if [ "${SBOR_REQUIRE_BROWSER:-}" = 1 ]; then exit 1; fi
  echo "    (the scanner page's browser test will be skipped)"
fi

echo "==> scanner page: the embedded build matches web/scanner"
hack/scanner-build.sh --check

echo "==> chart: lint and template every value set"
CHART_TEST_GO=0 hack/chart-test.sh

echo "==> go test (shared PostgreSQL and Apache Kafka)"
# -p 2: two packages at a time on two cores; each package's tests run in parallel inside.
go run ./hack/testenv -- go test ${GO_TEST_FLAGS:--count=1 -timeout 30m} -p 2 ./...

echo "==> a short fuzzing run of every fuzz target"
FUZZTIME="${FUZZTIME:-3s}" hack/fuzz.sh

echo "==> schemathesis against the OpenAPI document"
hack/schemathesis.sh

if [ -f .bench/e2e-notify.json ]; then
  echo "==> purchase → notification delay in the e2e run (ms): $(tr -d ' \n' < .bench/e2e-notify.json)"
fi
echo "==> make test passed in $(( $(date +%s) - start ))s"
