package monitoring

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/sbor-dev/sbor/internal/testkit"
	"github.com/sbor-dev/sbor/test/platform"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// externalMetrics are the metric names the chart's rules may use that no sbor process
// exports: kube-state-metrics' view of the operator's reminder Jobs.
var externalMetrics = map[string]bool{
	"kube_job_status_failed":    true,
	"kube_job_status_succeeded": true,
	"kube_job_labels":           true,
}

// targetLabels are the labels Prometheus adds to every series it scrapes through the
// chart's ServiceMonitor (the processes do not export them).
var targetLabels = []string{"namespace", "job", "pod", "instance", "container", "endpoint"}

const (
	releaseName = "sbor"
	namespace   = "sbor-monitoring"
)

// TestRulesAndDashboardUseExportedMetrics renders the chart with all of its monitoring on,
// and checks that every metric an alert or a dashboard query reads is exported by an sbor
// process (or is a known kube-state-metrics name), with the labels the query selects and
// groups by.
func TestRulesAndDashboardUseExportedMetrics(t *testing.T) {
	queries := chartQueries(t)
	if len(queries) < 30 {
		t.Fatalf("found only %d queries in the rendered rules and dashboard", len(queries))
	}
	exported := scrapePlatform(t)

	parse := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	for _, q := range queries {
		expr, err := parse.ParseExpr(q.promQL)
		if err != nil {
			t.Errorf("%s: does not parse: %v\n%s", q.where, err, q.promQL)
			continue
		}
		c := &checker{t: t, where: q.where, exported: exported, used: used}
		c.check(expr)
	}
	// The list of what the dashboard and rules watch: each must be among the names
	// used (a rename in the code fails above; dropping a panel fails here).
	for _, name := range []string{
		"sbor_http_requests_total", "sbor_http_request_duration_seconds_bucket",
		"sbor_ticket_purchases_total", "sbor_ticket_types_sold_out_total", "sbor_ticket_checkins_total",
		"sbor_outbox_backlog", "sbor_outbox_publish_latency_seconds_bucket", "sbor_kafka_consumer_lag",
		"sbor_kafka_messages_handled_total", "sbor_db_pool_connections", "go_goroutines",
		"kube_job_status_failed",
	} {
		if !used[name] {
			t.Errorf("no rule or panel uses %s", name)
		}
	}
	if !t.Failed() {
		t.Logf("%d queries, %d metric names, all exported", len(queries), len(used))
	}
}

// query is one PromQL expression of the rendered chart and where it is.
type query struct {
	where  string
	promQL string
}

// chartQueries renders the chart with every monitoring option on, in both ways of finding
// the reminder Jobs, and returns every alert expression and dashboard query, Grafana's
// variables replaced by values PromQL accepts.
func chartQueries(t *testing.T) []query {
	t.Helper()
	values := filepath.Join(repoRoot(), "charts", "sbor", "ci", "monitoring-values.yaml")
	var out []query
	for _, byLabels := range []string{"true", "false"} {
		objects := render(t, "--values", values, "--set", "metrics.prometheusRule.kubeStateMetricsJobLabels="+byLabels)
		checkScrapeTargets(t, objects)
		var rules, dashboards int
		for _, o := range objects {
			switch {
			case o.kind() == "PrometheusRule":
				rules++
				out = append(out, ruleQueries(t, o)...)
			case o.kind() == "ConfigMap" && strings.HasSuffix(o.name(), "-dashboard"):
				dashboards++
				data, _ := o["data"].(map[string]any)
				js, _ := data["sbor.json"].(string)
				out = append(out, dashboardQueries(t, js)...)
			}
		}
		if rules != 1 || dashboards != 1 {
			t.Fatalf("render has %d PrometheusRules and %d dashboard ConfigMaps, want one of each", rules, dashboards)
		}
	}
	return out
}

func ruleQueries(t *testing.T, rule object) []query {
	t.Helper()
	var out []query
	spec, _ := rule["spec"].(map[string]any)
	groups, _ := spec["groups"].([]any)
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			r := r.(map[string]any)
			name, _ := r["alert"].(string)
			if name == "" {
				name, _ = r["record"].(string)
			}
			expr, _ := r["expr"].(string)
			if name == "" || expr == "" {
				t.Errorf("rule without a name or an expression: %v", r)
				continue
			}
			out = append(out, query{where: "alert " + name, promQL: expr})
		}
	}
	return out
}

var (
	// Grafana's range variables, which stand where PromQL wants a duration.
	grafanaRange = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?`)
	// Any other Grafana variable ($namespace, ${service}) stands inside a label value.
	grafanaVar  = regexp.MustCompile(`\$\{?\w+\}?`)
	labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*\w+\s*\)\s*$`)
)

func grafanaToPromQL(q string) string {
	return grafanaVar.ReplaceAllString(grafanaRange.ReplaceAllString(q, "5m"), "x")
}

// dashboardQueries returns every panel's (and nested panel's) target expressions and every
// query variable's metric query.
func dashboardQueries(t *testing.T, js string) []query {
	t.Helper()
	var dash struct {
		UID        string            `json:"uid"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(js), &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if strings.Contains(js, "SBOR_RELEASE_NAMESPACE") || !strings.Contains(js, namespace) {
		t.Errorf("the dashboard's namespace variable does not start at the release's namespace")
	}
	var out []query
	type panel struct {
		ID      int               `json:"id"`
		Title   string            `json:"title"`
		Type    string            `json:"type"`
		Panels  []json.RawMessage `json:"panels"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	}
	ids := map[int]bool{}
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("dashboard panel: %v", err)
			}
			if ids[p.ID] {
				t.Errorf("dashboard: panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("dashboard panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				out = append(out, query{where: fmt.Sprintf("panel %q %s", p.Title, tg.RefID), promQL: grafanaToPromQL(tg.Expr)})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		} else if strings.HasPrefix(strings.TrimSpace(q), "label_values(") {
			continue // label_values(label) names no metric
		}
		out = append(out, query{where: "variable " + v.Name, promQL: grafanaToPromQL(q)})
	}
	return out
}

// family is what a scrape says about one metric family.
type family struct {
	typ    dto.MetricType
	labels map[string]bool
}

// checker walks one parsed expression.
type checker struct {
	t        *testing.T
	where    string
	exported map[string]family
	used     map[string]bool
}

func (c *checker) check(expr parser.Expr) {
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			c.selector(n)
		case *parser.AggregateExpr:
			if have, known := c.labelsOf(n.Expr); known {
				for _, l := range n.Grouping {
					if !have[l] {
						c.t.Errorf("%s: %s groups by %q, which %s does not carry", c.where, n.Op, l, n.Expr)
					}
				}
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil && n.VectorMatching.On {
				for _, side := range []parser.Expr{n.LHS, n.RHS} {
					if have, known := c.labelsOf(side); known {
						for _, l := range n.VectorMatching.MatchingLabels {
							if !have[l] {
								c.t.Errorf("%s: matches on %q, which %s does not carry", c.where, l, side)
							}
						}
					}
				}
			}
		}
		return nil
	})
}

// selector checks a metric name and the labels its matchers name.
func (c *checker) selector(vs *parser.VectorSelector) {
	name := vs.Name
	if name == "" {
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				name = m.Value
			}
		}
	}
	if name == "" {
		c.t.Errorf("%s: a selector without a metric name: %s", c.where, vs)
		return
	}
	c.used[name] = true
	if externalMetrics[name] {
		return
	}
	have, ok := c.seriesLabels(name)
	if !ok {
		c.t.Errorf("%s: metric %s is not exported by any sbor process", c.where, name)
		return
	}
	for _, m := range vs.LabelMatchers {
		if m.Name != model.MetricNameLabel && !have[m.Name] {
			c.t.Errorf("%s: %s has no label %q", c.where, name, m.Name)
		}
	}
}

// seriesLabels are the labels the series of a metric name carry once scraped, resolving a
// histogram's or summary's _bucket, _sum and _count to its family.
func (c *checker) seriesLabels(name string) (map[string]bool, bool) {
	labels := func(f family, extra ...string) map[string]bool {
		out := map[string]bool{}
		for l := range f.labels {
			out[l] = true
		}
		for _, l := range append(targetLabels, extra...) {
			out[l] = true
		}
		return out
	}
	if f, ok := c.exported[name]; ok {
		return labels(f), true
	}
	for suffix, types := range map[string][]dto.MetricType{
		"_bucket": {dto.MetricType_HISTOGRAM},
		"_sum":    {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
		"_count":  {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
	} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := c.exported[base]; ok {
			for _, typ := range types {
				if f.typ == typ {
					if suffix == "_bucket" {
						return labels(f, "le"), true
					}
					return labels(f), true
				}
			}
		}
	}
	// OpenMetrics names a counter's family without _total.
	if base, ok := strings.CutSuffix(name, "_total"); ok {
		if f, ok := c.exported[base]; ok && f.typ == dto.MetricType_COUNTER {
			return labels(f), true
		}
	}
	return nil, false
}

// labelsOf is the set of labels an expression's result carries, when it can tell.
func (c *checker) labelsOf(e parser.Expr) (map[string]bool, bool) {
	switch e := e.(type) {
	case *parser.VectorSelector:
		if externalMetrics[e.Name] {
			return nil, false
		}
		return c.seriesLabels(e.Name)
	case *parser.MatrixSelector:
		return c.labelsOf(e.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labelsOf(e.Expr)
	case *parser.ParenExpr:
		return c.labelsOf(e.Expr)
	case *parser.StepInvariantExpr:
		return c.labelsOf(e.Expr)
	case *parser.Call:
		for _, a := range e.Args {
			if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				have, ok := c.labelsOf(a)
				if ok && e.Func.Name == "histogram_quantile" {
					delete(have, "le")
				}
				return have, ok
			}
		}
	case *parser.AggregateExpr:
		have, ok := c.labelsOf(e.Expr)
		if !ok && !e.Without {
			ok, have = true, map[string]bool{}
		}
		if !ok {
			return nil, false
		}
		out := map[string]bool{}
		if e.Without {
			for l := range have {
				out[l] = true
			}
			for _, l := range e.Grouping {
				delete(out, l)
			}
		} else {
			for _, l := range e.Grouping {
				out[l] = true
			}
		}
		return out, true
	case *parser.BinaryExpr:
		if e.LHS.Type() == parser.ValueTypeVector {
			return c.labelsOf(e.LHS)
		}
		return c.labelsOf(e.RHS)
	}
	return nil, false
}

// checkScrapeTargets: the ServiceMonitor scrapes the port named "metrics" of the components'
// Services, each of which sends it to a container port named "metrics" where the process
// listens (SBOR_METRICS_ADDR in the component's ConfigMap).
func checkScrapeTargets(t *testing.T, objects []object) {
	t.Helper()
	var monitors []object
	for _, o := range objects {
		if o.kind() == "ServiceMonitor" {
			monitors = append(monitors, o)
		}
	}
	if len(monitors) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(monitors))
	}
	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels      map[string]string `json:"matchLabels"`
				MatchExpressions []struct {
					Key      string   `json:"key"`
					Operator string   `json:"operator"`
					Values   []string `json:"values"`
				} `json:"matchExpressions"`
			} `json:"selector"`
			Endpoints []struct {
				Port string `json:"port"`
				Path string `json:"path"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	monitors[0].decode(t, &sm)
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Fatalf("ServiceMonitor endpoints %+v, want the port named metrics at /metrics", sm.Spec.Endpoints)
	}
	selects := func(labels map[string]string) bool {
		for k, v := range sm.Spec.Selector.MatchLabels {
			if labels[k] != v {
				return false
			}
		}
		for _, e := range sm.Spec.Selector.MatchExpressions {
			if e.Operator != "In" || !contains(e.Values, labels[e.Key]) {
				return false
			}
		}
		return true
	}
	byName := map[string]map[string]object{}
	for _, o := range objects {
		if byName[o.kind()] == nil {
			byName[o.kind()] = map[string]object{}
		}
		byName[o.kind()][o.name()] = o
	}
	selected := 0
	for name, svc := range byName["Service"] {
		var s struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Ports []struct {
					Name       string `json:"name"`
					TargetPort string `json:"targetPort"`
				} `json:"ports"`
			} `json:"spec"`
		}
		svc.decode(t, &s)
		if !selects(s.Metadata.Labels) {
			continue
		}
		selected++
		port := ""
		for _, p := range s.Spec.Ports {
			if p.Name == "metrics" {
				port = p.TargetPort
			}
		}
		if port == "" {
			t.Errorf("Service %s is scraped but has no port named metrics", name)
			continue
		}
		var d struct {
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Ports []struct {
								Name          string `json:"name"`
								ContainerPort int    `json:"containerPort"`
							} `json:"ports"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		dep, ok := byName["Deployment"][name]
		if !ok {
			t.Errorf("Service %s is scraped but no Deployment %s backs it", name, name)
			continue
		}
		dep.decode(t, &d)
		containerPort := 0
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == port {
				containerPort = p.ContainerPort
			}
		}
		var cm struct {
			Data map[string]string `json:"data"`
		}
		byName["ConfigMap"][name].decode(t, &cm)
		if want := fmt.Sprintf(":%d", containerPort); containerPort == 0 || cm.Data["SBOR_METRICS_ADDR"] != want {
			t.Errorf("%s: the metrics port leads to container port %d, the process listens on SBOR_METRICS_ADDR=%q", name, containerPort, cm.Data["SBOR_METRICS_ADDR"])
		}
	}
	if want := len(byName["Deployment"]); selected != want {
		t.Errorf("the ServiceMonitor selects %d Services, want one per Deployment (%d)", selected, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scrapePlatform starts every target as its own process, drives one of everything the
// metrics count (an event published, a ticket type, a purchase and its notification, a
// check-in, a few refusals), and scrapes each process's /metrics.
func scrapePlatform(t *testing.T) map[string]family {
	t.Helper()
	p := platform.Start(t, platform.Options{})
	org := p.Organizer("Monitor")
	start := time.Now().Add(72 * time.Hour).UTC()
	ev := org.Must(201, "POST", "/api/events", map[string]any{
		"title": "Metrics night", "description": "Counting things.", "venue": "Hall M",
		"starts_at": start.Format(time.RFC3339), "ends_at": start.Add(2 * time.Hour).Format(time.RFC3339),
	})
	eventID := ev.JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+eventID+"/publish", nil)
	tt := org.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", map[string]any{
		"type": "standard", "price_cents": 1500, "currency": "EUR", "quantity": 1,
		"sales_start": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"sales_end":   start.Add(-time.Hour).Format(time.RFC3339),
	})
	typeID := tt.JSON["id"].(string)
	buyer := p.SignUp("Buyer")
	ticket := buyer.Must(201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": typeID})
	p.SignUp("Late").Must(409, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": typeID})
	code := ticket.JSON["code"].(string)
	org.Must(200, "POST", "/api/tickets/"+code+"/checkin", nil)
	org.Must(409, "POST", "/api/tickets/"+code+"/checkin", nil)
	platform.Eventually(t, 60*time.Second, "the purchase notification", func() bool {
		for _, n := range platform.Items(buyer.Must(200, "GET", "/api/notifications", nil)) {
			if n["type"] == "ticket.purchased" {
				return true
			}
		}
		return false
	})

	exported := map[string]family{}
	for name, addr := range metricsAddrs(t, p) {
		families := scrape(t, "http://"+addr+"/metrics")
		t.Logf("%s: %d metric families on %s", name, len(families), addr)
		for fname, f := range families {
			e, ok := exported[fname]
			if !ok {
				e = family{typ: f.GetType(), labels: map[string]bool{}}
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					e.labels[l.GetName()] = true
				}
			}
			exported[fname] = e
		}
	}
	return exported
}

// metricsAddrs finds where each process serves /metrics: every sbor target logs its
// listeners ("listening", server "metrics", addr).
func metricsAddrs(t *testing.T, p *platform.Platform) map[string]string {
	t.Helper()
	want := []string{"gateway", "user", "event", "ticket", "notification"}
	out := map[string]string{}
	platform.Eventually(t, 10*time.Second, "every process to log its metrics listener", func() bool {
		for name, logs := range p.Logs() {
			sc := bufio.NewScanner(strings.NewReader(logs))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var line struct {
					Msg    string `json:"msg"`
					Server string `json:"server"`
					Addr   string `json:"addr"`
				}
				if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Server == "metrics" {
					out[name] = line.Addr
				}
			}
		}
		for _, name := range want {
			if out[name] == "" {
				return false
			}
		}
		return true
	})
	return out
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// object is one rendered Kubernetes object.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }

func (o object) name() string {
	md, _ := o["metadata"].(map[string]any)
	s, _ := md["name"].(string)
	return s
}

func (o object) decode(t *testing.T, into any) {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s %s: %v", o.kind(), o.name(), err)
	}
}

// render runs `helm template` with the pinned helm and a throwaway helm home.
func render(t *testing.T, args ...string) []object {
	t.Helper()
	helm, err := helmBinary()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	args = append([]string{"template", releaseName, filepath.Join(repoRoot(), "charts", "sbor"), "--namespace", namespace}, args...)
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var out []object
	reader := utilyaml.NewYAMLReader(bufio.NewReader(&stdout))
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
		if o != nil {
			out = append(out, o)
		}
	}
	kinds := map[string]int{}
	for _, o := range out {
		kinds[o.kind()]++
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("rendered %d objects (%s)", len(out), strings.Join(names, ", "))
	return out
}

var helmBinary = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("SBOR_HELM"); p != "" {
		return p, nil
	}
	cmd := exec.Command(filepath.Join(repoRoot(), "hack", "tools", "tool.sh"), "helm")
	cmd.Dir = repoRoot()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/tools/tool.sh helm: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
})

func repoRoot() string { return platform.RepoRoot() }
