// Package chart tests the Helm chart in charts/sbor without a cluster that runs pods.
//
// It renders every value set under charts/sbor/ci with helm (built from its Go module by
// hack/tools/tool.sh), lints it, checks the rendered manifests for the platform's security
// properties (restricted Pod Security, default-deny NetworkPolicies that open exactly the
// paths of DESIGN.md section 1, no API token outside the operator, no secret in a ConfigMap),
// and submits every object to a real kube-apiserver (envtest, built by hack/envtest/assets.sh)
// with the CloudNativePG CRDs and the Strimzi stand-in installed: a server-side dry run of each
// object, and a real `helm install` followed by `helm upgrade` that must keep the signing key.
//
// hack/chart-test.sh runs it; `go test ./test/chart/` does the same on its own.
package chart
