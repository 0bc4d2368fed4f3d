# Sbor — every developer and CI command. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
IMG ?= sbor:$(VERSION)
GO_TEST_FLAGS ?= -count=1 -timeout 30m
# Every go command runs with go.mod's toolchain line (fetched once into the module cache);
# hack/lib/toolchain.sh does the same for the scripts. A GOTOOLCHAIN from the environment wins.
export GOTOOLCHAIN ?= $(shell sed -n 's/^toolchain //p' go.mod)
# Where the envtest control plane lives; built once per version into the user's cache.
ENVTEST_ASSETS = $(shell hack/envtest/assets.sh)

##@ Getting started

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: dev
dev: ## Run the whole platform locally (own PostgreSQL, embedded Kafka) and print the gateway URL.
	@hack/dev.sh

.PHONY: test
test: ## Run every test against one PostgreSQL and one Apache Kafka started for the run.
	hack/test.sh

##@ Development

.PHONY: build
build: ## Build bin/sbor.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/sbor ./cmd/sbor

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: ## gofmt check, go vet, staticcheck and govulncheck (no known vulnerability in called code).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$$(hack/tools/tool.sh staticcheck) ./...
	hack/govulncheck.sh

##@ Operator (kubebuilder layout: operator/api/v1alpha1, operator/internal/controller, config/)

.PHONY: manifests
manifests: ## Generate the CRD and RBAC into config/ with controller-gen, and the chart's copies.
	hack/manifests.sh manifests
	hack/sync-chart-crds.sh

.PHONY: generate
generate: ## Generate the API types' DeepCopy methods.
	hack/manifests.sh generate

.PHONY: run
run: ## Run the operator against the current kubeconfig (needs KAFKA_BROKERS, SBOR_EVENT_URL, SBOR_OPERATOR_REMINDER_IMAGE).
	SBOR_OPERATOR_LEADER_ELECTION=false go run ./cmd/sbor operator

.PHONY: install
install: ## Install the CRD into the current cluster.
	kubectl apply --server-side -k config/crd

.PHONY: deploy
deploy: ## Deploy the operator into the current cluster (config/default).
	kubectl apply --server-side -k config/default

##@ Kubernetes

.PHONY: chart-test
chart-test: ## Lint, render and server-side-validate the Helm chart; check its security properties.
	hack/chart-test.sh

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: kind-up
kind-up: ## Create a kind cluster with the operators and the chart installed (needs Docker).
	hack/kind-up.sh

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	hack/kind-down.sh

.PHONY: fuzz
fuzz: ## Fuzz every fuzz target for FUZZTIME (default 5s) each.
	hack/fuzz.sh

.PHONY: chaos
chaos: ## Run only the fault-injection suite (part of make test).
	go run ./hack/testenv -- go test -count=1 -v -timeout 20m ./test/chaos/

.PHONY: security
security: ## Run only the attacker suite and the log secret scan (part of make test).
	go run ./hack/testenv -- go test -count=1 -v -timeout 20m ./test/security/

.PHONY: schemathesis
schemathesis: ## OpenAPI-driven fuzzing of the gateway (schemathesis in a cached virtualenv).
	hack/schemathesis.sh

.PHONY: govulncheck
govulncheck: ## Known vulnerabilities in called code (database built from golang.org/x/vulndb).
	hack/govulncheck.sh

.PHONY: e2e
e2e: ## Run only the end-to-end suite (every target its own process; part of make test).
	go run ./hack/testenv -- go test -count=1 -v ./test/e2e/

.PHONY: bench
bench: ## Flash-sale benchmark: the platform vs PostgreSQL's one-transaction-per-ticket limit (BENCH_FLAGS=-h lists flags).
	go run ./test/bench $(BENCH_FLAGS)

.PHONY: demo
demo: ## Walk the fifteen flows against a running make dev, printing each request and answer.
	go run ./hack/demo
