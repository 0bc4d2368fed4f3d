#!/usr/bin/env bash
# A local Sbor on kind (make kind-up): creates a kind cluster (or reuses one of the same name)
# with an ingress controller, installs the CloudNativePG and Strimzi operators at pinned
# versions, builds the sbor image and loads it into the cluster, installs charts/sbor into a
# namespace that enforces Pod Security "restricted", waits for everything to be ready, runs
# `helm test`, and prints the URL.
#
# Needs: Docker, Go, network access to container registries. kind and helm are built from
# their Go modules into the shared tool cache; kubectl is taken from PATH, or built from
# k8s.io/kubernetes by hack/envtest/assets.sh when there is none.
#
# Settings (environment):
#   SBOR_KIND_CLUSTER    cluster name                        (default sbor)
#   SBOR_KIND_HTTP_PORT  host port of the ingress, 127.0.0.1 (default 8080)
#   SBOR_NAMESPACE       namespace of the release            (default sbor)
#   SBOR_IMAGE           image to build and load             (default sbor:dev)
#   SBOR_SKIP_BUILD=1    load SBOR_IMAGE as it is, without docker build
#   SBOR_HELM_ARGS       extra arguments for `helm upgrade --install` (e.g. "--set log.level=debug")
#   CNPG_VERSION, STRIMZI_VERSION, TRAEFIK_CHART_VERSION  override the pins below
set -euo pipefail

# Pinned versions. CloudNativePG's manifest comes from its Go module (releases/cnpg-X.yaml),
# the same module whose CRDs the chart tests install (test/chart checks the versions agree).
CNPG_VERSION="${CNPG_VERSION:-1.29.0}"
# Strimzi 1.0 serves only kafka.strimzi.io/v1 and runs Kafka 4.1-4.2 (the chart's default 4.2.0).
STRIMZI_VERSION="${STRIMZI_VERSION:-1.0.1}"
TRAEFIK_CHART_VERSION="${TRAEFIK_CHART_VERSION:-41.5.0}"

cluster="${SBOR_KIND_CLUSTER:-sbor}"
http_port="${SBOR_KIND_HTTP_PORT:-8080}"
namespace="${SBOR_NAMESPACE:-sbor}"
image="${SBOR_IMAGE:-sbor:dev}"
release=sbor
node_port=30080 # Traefik's web entry point on the node; kind maps it to 127.0.0.1:$http_port

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source hack/lib/toolchain.sh

log() { printf '\033[1mkind-up:\033[0m %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v docker >/dev/null || die "docker is required (kind runs its nodes as containers)"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is it running? can this user use it?)"
command -v go >/dev/null || die "go is required (kind and helm are built from their Go modules)"

# Tools. kind at the version go.mod pins for the Go API of the e2e suite.
kind_version=$(go list -m -f '{{.Version}}' sigs.k8s.io/kind)
kind=$(hack/tools/gotool.sh kind sigs.k8s.io/kind "$kind_version")
helm=$(hack/tools/tool.sh helm)
if command -v kubectl >/dev/null; then
  kubectl_bin=$(command -v kubectl)
else
  log "no kubectl on PATH: building it (hack/envtest/assets.sh, several minutes the first time)"
  kubectl_bin="$(hack/envtest/assets.sh)/kubectl"
fi
context="kind-$cluster"
kubectl() { "$kubectl_bin" --context "$context" "$@"; }
helm() { "$helm" --kube-context "$context" "$@"; }

# 1. The cluster: one node; Traefik's NodePort is published on 127.0.0.1:$http_port.
if "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "reusing kind cluster $cluster"
  "$kind" export kubeconfig --name "$cluster" >/dev/null
else
  log "creating kind cluster $cluster (kind $kind_version)"
  "$kind" create cluster --name "$cluster" --wait 5m --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: $node_port
        hostPort: $http_port
        listenAddress: "127.0.0.1"
        protocol: TCP
EOF
fi
kubectl wait --for=condition=Ready node --all --timeout=5m >/dev/null

# 2. Ingress controller: Traefik, reachable through the node port kind publishes.
log "installing Traefik (chart $TRAEFIK_CHART_VERSION)"
helm upgrade --install traefik oci://ghcr.io/traefik/helm/traefik \
  --version "$TRAEFIK_CHART_VERSION" --namespace traefik --create-namespace \
  --set service.type=NodePort \
  --set ports.web.nodePort="$node_port" \
  --set ingressClass.enabled=true --set ingressClass.isDefaultClass=true \
  --wait --timeout 5m >/dev/null

# 3. CloudNativePG, from the manifest in its Go module.
log "installing CloudNativePG $CNPG_VERSION"
cnpg_dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "github.com/cloudnative-pg/cloudnative-pg@v$CNPG_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
cnpg_manifest="$cnpg_dir/releases/cnpg-$CNPG_VERSION.yaml"
[[ -f "$cnpg_manifest" ]] || die "no $cnpg_manifest in the CloudNativePG module"
kubectl apply --server-side --force-conflicts -f "$cnpg_manifest" >/dev/null
kubectl -n cnpg-system rollout status deployment/cnpg-controller-manager --timeout=5m >/dev/null

# 4. Strimzi, with pods that meet Pod Security "restricted".
log "installing Strimzi $STRIMZI_VERSION"
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" --namespace strimzi --create-namespace \
  --set watchAnyNamespace=true \
  --set 'extraEnvs[0].name=STRIMZI_POD_SECURITY_PROVIDER_CLASS' \
  --set 'extraEnvs[0].value=restricted' \
  --wait --timeout 5m >/dev/null

# 5. The image.
if [[ "${SBOR_SKIP_BUILD:-}" != 1 ]]; then
  version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
  log "building $image ($version)"
  docker build --build-arg VERSION="$version" -t "$image" . >&2
fi
log "loading $image into the cluster"
"$kind" load docker-image "$image" --name "$cluster" >/dev/null

# 6. The namespace, enforcing Pod Security "restricted" (README, "Install on Kubernetes").
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$namespace" --overwrite \
  pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/enforce-version=latest \
  pod-security.kubernetes.io/warn=restricted \
  pod-security.kubernetes.io/warn-version=latest >/dev/null

# 7. The chart, with the kind value set (also linted and dry-run by make chart-test).
log "installing charts/sbor into namespace $namespace"
# shellcheck disable=SC2086 # SBOR_HELM_ARGS is a list of arguments
helm upgrade --install "$release" charts/sbor --namespace "$namespace" \
  --values charts/sbor/ci/kind-values.yaml \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
  ${SBOR_HELM_ARGS:-} >/dev/null

# 8. Wait: databases and Kafka first (the services' init containers retry until they are up),
#    then every Deployment.
log "waiting for the PostgreSQL clusters"
kubectl -n "$namespace" wait clusters.postgresql.cnpg.io --all --for=condition=Ready --timeout=10m >/dev/null
log "waiting for Kafka"
kubectl -n "$namespace" wait kafkas.kafka.strimzi.io --all --for=condition=Ready --timeout=10m >/dev/null
log "waiting for the sbor Deployments"
for deployment in $(kubectl -n "$namespace" get deployments -l "app.kubernetes.io/instance=$release" -o name); do
  kubectl -n "$namespace" rollout status "$deployment" --timeout=5m >/dev/null
done

# 9. Smoke test through the chart's helm test, then through the ingress from this machine.
log "helm test"
helm test "$release" --namespace "$namespace" --timeout 5m >/dev/null
url="http://127.0.0.1:$http_port"
# The ingress controller picks the Ingress up asynchronously: curl retries for up to a minute.
curl -fsS --retry 30 --retry-all-errors --retry-delay 2 --max-time 5 "$url/healthz" >/dev/null ||
  die "the gateway does not answer at $url/healthz"

cat <<EOF

Sbor is running on kind cluster "$cluster", namespace "$namespace".

  API:   $url/api
  Try:   curl -sS -X POST $url/api/auth/register -H 'Content-Type: application/json' \\
           -d '{"email":"ada@example.com","name":"Ada","password":"a long passphrase here"}'
  Pods:  kubectl --context $context -n $namespace get pods
  Stop:  make kind-down   (or hack/kind-down.sh)
EOF
