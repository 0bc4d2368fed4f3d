package chart

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// This file evaluates the rendered NetworkPolicies the way a CNI plugin does (a pod selected
// by a policy of a type is isolated for it; a connection needs the caller's egress and the
// callee's ingress) over a model of the namespace: the chart's pods with their rendered labels,
// the operators' database and Kafka pods, the ingress controller, cluster DNS, a Prometheus,
// strangers inside and outside the namespace, and addresses outside the cluster. The set of
// connections it finds allowed must be exactly the paths of DESIGN.md section 1.

// endpoint is one pod, or an address outside the cluster (pod false).
type endpoint struct {
	name      string
	pod       bool
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
	ip        netip.Addr
	sbor      bool // a pod of the chart's own components (policies restrict its egress too)
	database  bool // a CloudNativePG instance of the release
}

type probe struct {
	proto corev1.Protocol
	port  int32
}

func (p probe) String() string { return fmt.Sprintf("%s/%d", p.proto, p.port) }

var probes = []probe{
	{corev1.ProtocolUDP, 53}, {corev1.ProtocolTCP, 53}, {corev1.ProtocolTCP, 443},
	{corev1.ProtocolTCP, 5432}, {corev1.ProtocolTCP, 6443}, {corev1.ProtocolTCP, 8000},
	{corev1.ProtocolTCP, 8080}, {corev1.ProtocolTCP, 9090}, {corev1.ProtocolTCP, 9092},
	{corev1.ProtocolTCP, 9093}, {corev1.ProtocolTCP, 9187},
}

func flow(src, dst string, p probe) string { return src + " -> " + dst + " " + p.String() }

func nsLabels(name string, extra map[string]string) map[string]string {
	l := map[string]string{"kubernetes.io/metadata.name": name}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// modelEndpoints builds the namespace model for one render.
func modelEndpoints(t *testing.T, m manifests, v map[string]any) []*endpoint {
	t.Helper()
	var eps []*endpoint
	releaseNS := nsLabels(namespace, nil)
	for id, tmpl := range podSpecs(t, m) {
		name := tmpl.Labels["app.kubernetes.io/component"]
		if name == "" {
			t.Fatalf("%s has no component label", id)
		}
		eps = append(eps, &endpoint{name: name, pod: true, namespace: namespace, nsLabels: releaseNS, labels: tmpl.Labels, sbor: true})
	}
	// The operator's reminder Jobs, labelled as the chart tells the operator to label them.
	if op := m.named("ConfigMap", "sbor-operator"); op != nil {
		spec, _ := op.Object["data"].(map[string]any)["SBOR_OPERATOR_REMINDER_LABELS"].(string)
		l, err := labels.ConvertSelectorToLabelsMap(spec)
		if err != nil || len(l) == 0 {
			t.Fatalf("operator ConfigMap: SBOR_OPERATOR_REMINDER_LABELS %q: %v", spec, err)
		}
		eps = append(eps, &endpoint{name: "reminder", pod: true, namespace: namespace, nsLabels: releaseNS, labels: l, sbor: true})
	}
	for _, c := range m.ofKind("Cluster") {
		l := map[string]string{"cnpg.io/cluster": c.GetName(), "cnpg.io/instanceRole": "primary", "cnpg.io/podRole": "instance", "role": "primary"}
		if inherited, ok := lookup(c.Object, "spec", "inheritedMetadata", "labels").(map[string]any); ok {
			for k, val := range inherited {
				l[k] = fmt.Sprint(val)
			}
		}
		eps = append(eps, &endpoint{name: strings.TrimPrefix(c.GetName(), "sbor-"), pod: true, namespace: namespace, nsLabels: releaseNS, labels: l, database: true})
	}
	for _, k := range m.ofKind("Kafka") {
		eps = append(eps, &endpoint{name: "kafka", pod: true, namespace: namespace, nsLabels: releaseNS, labels: map[string]string{
			"strimzi.io/cluster": k.GetName(), "strimzi.io/kind": "Kafka", "strimzi.io/name": k.GetName() + "-kafka",
			"strimzi.io/broker-role": "true", "strimzi.io/controller-role": "true",
		}})
	}
	ingressNS, _ := lookup(v, "networkPolicy", "ingressController", "namespaceSelector", "matchLabels").(map[string]any)
	ingressPod, _ := lookup(v, "networkPolicy", "ingressController", "podSelector", "matchLabels").(map[string]any)
	nsName := fmt.Sprint(ingressNS["kubernetes.io/metadata.name"])
	eps = append(eps,
		&endpoint{name: "ingress-controller", pod: true, namespace: nsName, nsLabels: nsLabels(nsName, stringMap(ingressNS)), labels: stringMapOr(ingressPod, map[string]string{"app": "ingress"})},
		&endpoint{name: "dns", pod: true, namespace: "kube-system", nsLabels: nsLabels("kube-system", nil), labels: map[string]string{"k8s-app": "kube-dns"}},
		&endpoint{name: "cnpg-operator", pod: true, namespace: "cnpg-system", nsLabels: nsLabels("cnpg-system", nil), labels: map[string]string{"app.kubernetes.io/name": "cloudnative-pg"}},
		&endpoint{name: "prometheus", pod: true, namespace: "monitoring", nsLabels: nsLabels("monitoring", nil), labels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
		&endpoint{name: "stranger-in-namespace", pod: true, namespace: namespace, nsLabels: releaseNS, labels: map[string]string{"app": "curious"}},
		&endpoint{name: "stranger-elsewhere", pod: true, namespace: "elsewhere", nsLabels: nsLabels("elsewhere", nil), labels: map[string]string{"app": "curious"}},
		&endpoint{name: "apiserver", ip: netip.MustParseAddr("172.18.0.2")},
		&endpoint{name: "kubernetes-service", ip: netip.MustParseAddr("10.96.0.1")},
		&endpoint{name: "external-db", ip: netip.MustParseAddr("10.20.0.5")},
		&endpoint{name: "external-kafka", ip: netip.MustParseAddr("10.30.0.5")},
		&endpoint{name: "internet", ip: netip.MustParseAddr("203.0.113.10")},
	)
	return eps
}

func stringMap(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

func stringMapOr(m map[string]any, def map[string]string) map[string]string {
	if len(m) == 0 {
		return def
	}
	return stringMap(m)
}

func policiesOf(t *testing.T, m manifests) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, u := range m.ofKind("NetworkPolicy") {
		p := typed[networkingv1.NetworkPolicy](t, u)
		if p.Namespace == "" {
			p.Namespace = namespace
		}
		out = append(out, p)
	}
	return out
}

func selectorMatches(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(l))
}

func policyTypes(p *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(p.Spec.PolicyTypes) > 0 {
		return p.Spec.PolicyTypes
	}
	types := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(p.Spec.Egress) > 0 {
		types = append(types, networkingv1.PolicyTypeEgress)
	}
	return types
}

func hasType(p *networkingv1.NetworkPolicy, typ networkingv1.PolicyType) bool {
	for _, x := range policyTypes(p) {
		if x == typ {
			return true
		}
	}
	return false
}

func selects(t *testing.T, p *networkingv1.NetworkPolicy, e *endpoint) bool {
	return e.pod && e.namespace == p.Namespace && selectorMatches(t, &p.Spec.PodSelector, e.labels)
}

func peerMatches(t *testing.T, peer networkingv1.NetworkPolicyPeer, policyNS string, e *endpoint) bool {
	if peer.IPBlock != nil {
		// Addresses outside the cluster only: pod addresses are not modelled (the chart's
		// ipBlocks name the API server and external servers).
		if e.pod {
			return false
		}
		pfx, err := netip.ParsePrefix(peer.IPBlock.CIDR)
		if err != nil {
			t.Fatalf("ipBlock %q: %v", peer.IPBlock.CIDR, err)
		}
		if !pfx.Contains(e.ip) {
			return false
		}
		for _, ex := range peer.IPBlock.Except {
			if xp, err := netip.ParsePrefix(ex); err == nil && xp.Contains(e.ip) {
				return false
			}
		}
		return true
	}
	if !e.pod {
		return false
	}
	if peer.NamespaceSelector == nil {
		if e.namespace != policyNS {
			return false
		}
	} else if !selectorMatches(t, peer.NamespaceSelector, e.nsLabels) {
		return false
	}
	return peer.PodSelector == nil || selectorMatches(t, peer.PodSelector, e.labels)
}

func portMatches(t *testing.T, ports []networkingv1.NetworkPolicyPort, pr probe) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != pr.proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.Type != 0 {
			t.Fatalf("named port %q in a NetworkPolicy: use numbers, the model (and reviewers) resolve them more easily", p.Port.StrVal)
		}
		end := p.Port.IntVal
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if pr.port >= p.Port.IntVal && pr.port <= end {
			return true
		}
	}
	return false
}

// egressAllows: the caller's policies let the connection out (true when none isolates it).
func egressAllows(t *testing.T, pols []*networkingv1.NetworkPolicy, src, dst *endpoint, pr probe) bool {
	if !src.pod {
		return true
	}
	isolated := false
	for _, p := range pols {
		if !selects(t, p, src) || !hasType(p, networkingv1.PolicyTypeEgress) {
			continue
		}
		isolated = true
		for _, rule := range p.Spec.Egress {
			peerOK := len(rule.To) == 0
			for _, peer := range rule.To {
				peerOK = peerOK || peerMatches(t, peer, p.Namespace, dst)
			}
			if peerOK && portMatches(t, rule.Ports, pr) {
				return true
			}
		}
	}
	return !isolated
}

// ingressAllows: the callee's policies let the connection in (true when none isolates it).
func ingressAllows(t *testing.T, pols []*networkingv1.NetworkPolicy, src, dst *endpoint, pr probe) bool {
	if !dst.pod {
		return true
	}
	isolated := false
	for _, p := range pols {
		if !selects(t, p, dst) || !hasType(p, networkingv1.PolicyTypeIngress) {
			continue
		}
		isolated = true
		for _, rule := range p.Spec.Ingress {
			peerOK := len(rule.From) == 0
			for _, peer := range rule.From {
				peerOK = peerOK || peerMatches(t, peer, p.Namespace, src)
			}
			if peerOK && portMatches(t, rule.Ports, pr) {
				return true
			}
		}
	}
	return !isolated
}

func allowed(t *testing.T, pols []*networkingv1.NetworkPolicy, src, dst *endpoint, pr probe) bool {
	return egressAllows(t, pols, src, dst, pr) && ingressAllows(t, pols, src, dst, pr)
}

// observedFlows lists every connection the policies allow in which a chart pod is the caller,
// or a chart pod or database the callee; and, each end on its own, what the callers' egress
// rules let out and what the callees' ingress rules let in (so that a rule too wide on one
// end fails even while the other end still blocks the connection).
func observedFlows(t *testing.T, pols []*networkingv1.NetworkPolicy, eps []*endpoint) (both, egress, ingress map[string]bool) {
	both, egress, ingress = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, src := range eps {
		for _, dst := range eps {
			if src == dst || !(src.sbor || dst.sbor || dst.database) {
				continue
			}
			for _, pr := range probes {
				out := src.sbor && egressAllows(t, pols, src, dst, pr)
				in := (dst.sbor || dst.database) && ingressAllows(t, pols, src, dst, pr)
				if out {
					egress[flow(src.name, dst.name, pr)] = true
				}
				if in {
					ingress[flow(src.name, dst.name, pr)] = true
				}
				if allowed(t, pols, src, dst, pr) {
					both[flow(src.name, dst.name, pr)] = true
				}
			}
		}
	}
	return both, egress, ingress
}

// expectedFlows are the paths of DESIGN.md section 1 for a value set, written out from the
// design (not from the templates).
func expectedFlows(t *testing.T, v map[string]any, eps []*endpoint) map[string]bool {
	operator := boolAt(v, "operator", "enabled")
	tests := boolAt(v, "tests", "enabled")
	extPG := boolAt(v, "postgres", "external", "enabled")
	extKafka := boolAt(v, "kafka", "external", "enabled")
	metrics, _ := lookup(v, "networkPolicy", "metricsFrom").([]any)
	tcp := func(port int32) probe { return probe{corev1.ProtocolTCP, port} }

	out := map[string]bool{}
	add := func(src, dst string, p probe) { out[flow(src, dst, p)] = true }

	components := []string{"gateway", "user", "event", "ticket", "notification"}
	if operator {
		components = append(components, "operator")
	}
	callers := append([]string{}, components...)
	if operator {
		callers = append(callers, "reminder")
	}
	if tests {
		callers = append(callers, "test")
	}
	for _, c := range callers {
		add(c, "dns", probe{corev1.ProtocolUDP, 53})
		add(c, "dns", tcp(53))
	}
	add("ingress-controller", "gateway", tcp(8080))
	if tests {
		add("test", "gateway", tcp(8080))
	}
	for _, s := range []string{"user", "event", "ticket", "notification"} {
		add("gateway", s, tcp(8080))
	}
	add("ticket", "event", tcp(8080))
	add("ticket", "user", tcp(8080))
	add("notification", "ticket", tcp(8080))
	if operator {
		add("reminder", "event", tcp(8080))
	}

	// toOutside adds src -> every address outside the cluster inside cidrs (or every endpoint
	// at all when no CIDR narrows the rule) on the ports.
	toOutside := func(src string, cidrs []any, ports []int32) {
		for _, e := range eps {
			if e.name == src {
				continue
			}
			in := len(cidrs) == 0
			for _, c := range cidrs {
				if !e.pod && netip.MustParsePrefix(fmt.Sprint(c)).Contains(e.ip) {
					in = true
				}
			}
			if in {
				for _, p := range ports {
					add(src, e.name, tcp(p))
				}
			}
		}
	}

	for _, s := range []string{"user", "event", "ticket", "notification"} {
		if extPG {
			cidrs, _ := lookup(v, "postgres", "external", "cidrs").([]any)
			toOutside(s, cidrs, []int32{int32(toInt(lookup(v, "postgres", "external", "port")))})
			continue
		}
		db := s + "-db"
		add(s, db, tcp(5432))
		add("cnpg-operator", db, tcp(5432))
		add("cnpg-operator", db, tcp(8000))
		if len(metrics) > 0 {
			add("prometheus", db, tcp(9187))
		}
	}
	kafkaUsers := []string{"event", "ticket", "notification"}
	if operator {
		kafkaUsers = append(kafkaUsers, "operator")
	}
	for _, c := range kafkaUsers {
		if extKafka {
			cidrs, _ := lookup(v, "kafka", "external", "cidrs").([]any)
			var ports []int32
			for _, p := range lookup(v, "kafka", "external", "ports").([]any) {
				ports = append(ports, int32(toInt(p)))
			}
			toOutside(c, cidrs, ports)
		} else {
			add(c, "kafka", tcp(9092))
		}
	}
	if operator {
		cidrs, _ := lookup(v, "networkPolicy", "kubeAPIServer", "cidrs").([]any)
		var ports []int32
		for _, p := range lookup(v, "networkPolicy", "kubeAPIServer", "ports").([]any) {
			ports = append(ports, int32(toInt(p)))
		}
		toOutside("operator", cidrs, ports)
	}
	if len(metrics) > 0 {
		for _, c := range components {
			add("prometheus", c, tcp(9090))
		}
	}
	return out
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	panic(fmt.Sprintf("not a number: %#v", v))
}

// TestNetworkPolicyPaths: the allowed connections are exactly the design's paths, for every
// value set.
func TestNetworkPolicyPaths(t *testing.T) {
	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run(name, func(t *testing.T) {
			m := render(t, file)
			v := valuesOf(t, file)
			eps := modelEndpoints(t, m, v)
			byName := map[string]*endpoint{}
			for _, e := range eps {
				byName[e.name] = e
			}
			both, egress, ingress := observedFlows(t, policiesOf(t, m), eps)
			want := expectedFlows(t, v, eps)
			wantEgress, wantIngress := map[string]bool{}, map[string]bool{}
			for f := range want {
				src, rest, _ := strings.Cut(f, " -> ")
				dst, _, _ := strings.Cut(rest, " ")
				if byName[src].sbor {
					wantEgress[f] = true
				}
				if byName[dst].sbor || byName[dst].database {
					wantIngress[f] = true
				}
			}
			compareFlows(t, "connections", both, want)
			compareFlows(t, "egress rules", egress, wantEgress)
			compareFlows(t, "ingress rules", ingress, wantIngress)
			if len(want) < 10 {
				t.Fatalf("suspiciously few expected paths: %v", want)
			}
		})
	}
}

func compareFlows(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	var extra, missing []string
	for f := range got {
		if !want[f] {
			extra = append(extra, f)
		}
	}
	for f := range want {
		if !got[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 {
		t.Errorf("NetworkPolicy %s allow more than the design:\n  %s", what, strings.Join(extra, "\n  "))
	}
	if len(missing) > 0 {
		t.Errorf("NetworkPolicy %s block paths of the design:\n  %s", what, strings.Join(missing, "\n  "))
	}
}

// TestEveryPodIsolated: every chart pod (and the operator's reminder pods) is selected by a
// default-deny policy for both directions, and by a policy of its own.
func TestEveryPodIsolated(t *testing.T) {
	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run(name, func(t *testing.T) {
			m := render(t, file)
			pols := policiesOf(t, m)
			var deny *networkingv1.NetworkPolicy
			for _, p := range pols {
				if p.Name == "sbor-default-deny" {
					deny = p
				}
			}
			if deny == nil {
				t.Fatal("no sbor-default-deny NetworkPolicy")
			}
			if len(deny.Spec.Ingress) != 0 || len(deny.Spec.Egress) != 0 || !hasType(deny, networkingv1.PolicyTypeIngress) || !hasType(deny, networkingv1.PolicyTypeEgress) {
				t.Errorf("sbor-default-deny must deny both directions and allow nothing: %+v", deny.Spec)
			}
			for _, e := range modelEndpoints(t, m, valuesOf(t, file)) {
				if !e.sbor {
					continue
				}
				if !selects(t, deny, e) {
					t.Errorf("%s is not selected by the default-deny policy", e.name)
				}
				own := 0
				for _, p := range pols {
					if p != deny && selects(t, p, e) && hasType(p, networkingv1.PolicyTypeIngress) && hasType(p, networkingv1.PolicyTypeEgress) {
						own++
					}
				}
				if own != 1 {
					t.Errorf("%s is selected by %d component policies, want 1", e.name, own)
				}
			}
			// The operators may copy their resources' labels onto the database and Kafka pods:
			// those labels must never put them under the release's default deny.
			for _, kind := range []string{"Cluster", "Kafka", "KafkaNodePool"} {
				for _, r := range m.ofKind(kind) {
					l := r.GetLabels()
					if inherited, ok := lookup(r.Object, "spec", "inheritedMetadata", "labels").(map[string]any); ok {
						for k, v := range stringMap(inherited) {
							l[k] = v
						}
					}
					if selectorMatches(t, &deny.Spec.PodSelector, l) {
						t.Errorf("%s %s carries labels the default-deny policy selects: %v", kind, r.GetName(), l)
					}
				}
			}
			for _, c := range m.ofKind("Cluster") {
				found := false
				for _, p := range pols {
					if p.Spec.PodSelector.MatchLabels["cnpg.io/cluster"] == c.GetName() {
						found = true
					}
				}
				if !found {
					t.Errorf("database %s has no NetworkPolicy", c.GetName())
				}
			}
		})
	}
}
