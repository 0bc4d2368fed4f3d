#!/usr/bin/env bash
# make dev: the whole platform on this machine, no cluster. A PostgreSQL of its own in
# .dev/postgres (from the machine's server binaries; kept between runs), an embedded
# Kafka-protocol broker, every service in one process. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/toolchain.sh
mkdir -p .dev bin
go build -o bin/sbor ./cmd/sbor # incremental: fast when nothing changed
if [ ! -s .dev/jwt-ed25519.pem ]; then
  (umask 077 && bin/sbor keygen > .dev/jwt-ed25519.pem)
fi
export SBOR_DEV_POSTGRES_DIR="${SBOR_DEV_POSTGRES_DIR:-$PWD/.dev/postgres}"
export SBOR_JWT_PRIVATE_KEY_FILE="${SBOR_JWT_PRIVATE_KEY_FILE:-$PWD/.dev/jwt-ed25519.pem}"
export SBOR_LOG_FORMAT="${SBOR_LOG_FORMAT:-text}"
export SBOR_METRICS_ADDR="${SBOR_METRICS_ADDR:-127.0.0.1:9090}"
export SBOR_REMINDER_INTERVAL="${SBOR_REMINDER_INTERVAL:-5s}"
export SBOR_DEV_KAFKA_DIR="${SBOR_DEV_KAFKA_DIR:-$PWD/.dev/kafka}"
exec bin/sbor all
