#!/usr/bin/env bash
# Resolve the Apache Kafka broker jars named by hack/kafka/pom.xml into a cache
# outside the clone and print the directory that holds them (and nothing else)
# on stdout:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/sbor/kafka/<kafka.version>/libs
#
# The tests run the broker from there with the machine's Java
# (internal/testkit/kafkaserver). The version is set once, as the kafka.version
# property of pom.xml. A marker file is written last, after the jars are in
# place; it records a hash of pom.xml, so an interrupted download, or a pom
# that changed its dependencies without changing the version, is fetched again.
# Concurrent callers (go test runs one binary per package in parallel) are
# serialised with flock, so only one of them downloads.
#
# Needs: mvn (reaching Maven Central through its usual settings), sha256sum.
# Maven's own output goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"

version="$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' "$pom" | head -n 1)"
if [[ -z "$version" ]]; then
	echo "fetch.sh: no <kafka.version> property in $pom" >&2
	exit 1
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/sbor/kafka/$version"
libs="$cache/libs"
marker="$cache/.complete"
want="$(sha256sum "$pom" | cut -d' ' -f1)"

complete() {
	[[ -f "$marker" && -d "$libs" && "$(cat "$marker")" == "$want" ]]
}

if complete; then
	echo "$libs"
	exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

# Another process may have finished the download while this one waited.
if ! complete; then
	if ! command -v mvn >/dev/null 2>&1; then
		echo "fetch.sh: mvn not found; install Maven to fetch Apache Kafka $version" >&2
		exit 1
	fi
	rm -f "$marker"
	# Leftovers of interrupted runs (this one holds the lock, so they are dead).
	rm -rf "$cache"/libs.tmp.*
	tmp="$cache/libs.tmp.$$"
	trap 'rm -rf "$tmp"' EXIT
	echo "fetch.sh: resolving Apache Kafka $version into $libs" >&2
	mvn -B -q -Dstyle.color=never -f "$pom" \
		dependency:copy-dependencies \
		-DincludeScope=runtime \
		-DoutputDirectory="$tmp" >&2
	rm -rf "$libs"
	mv "$tmp" "$libs"
	trap - EXIT
	printf '%s\n' "$want" >"$marker.tmp"
	mv "$marker.tmp" "$marker"
fi

echo "$libs"
