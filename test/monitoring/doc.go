// Package monitoring checks that the chart's monitoring (charts/sbor: the PrometheusRule's
// alerts and the Grafana dashboard) asks only for metrics that exist.
//
// It renders the chart with every monitoring option on (real helm, hack/tools/tool.sh),
// parses every alert expression and dashboard query with Prometheus' own PromQL parser, and
// compares each metric name — and each label a selector matches on — with what the sbor
// processes really export: the platform is started the way a user runs it (test/platform:
// one process per target, real PostgreSQL and Kafka), driven through a purchase, a
// notification and a check-in so that every labelled series exists, and each process's
// /metrics is scraped. The only names allowed from elsewhere are kube-state-metrics' ones
// listed in the test.
package monitoring
