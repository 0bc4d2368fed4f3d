package chart

import (
	"encoding/base64"
	"os"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// podSpecs are the pod templates of a render: Deployments, Jobs, CronJobs and bare Pods (the
// helm test), keyed "Kind/name".
func podSpecs(t *testing.T, m manifests) map[string]*corev1.PodTemplateSpec {
	t.Helper()
	out := map[string]*corev1.PodTemplateSpec{}
	for _, u := range m {
		switch u.GetKind() {
		case "Deployment":
			d := typed[appsv1.Deployment](t, u)
			out["Deployment/"+u.GetName()] = &d.Spec.Template
		case "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet":
			t.Errorf("%s %s: the chart renders no %s; extend the security tests first", u.GetKind(), u.GetName(), u.GetKind())
		case "Pod":
			p := typed[corev1.Pod](t, u)
			out["Pod/"+u.GetName()] = &corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
		}
	}
	if len(out) == 0 {
		t.Fatal("no pods rendered")
	}
	return out
}

// TestPodsAreRestricted checks every container, init containers included, against Pod
// Security "restricted" and the chart's own hardening.
func TestPodsAreRestricted(t *testing.T) {
	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run(name, func(t *testing.T) {
			for id, tmpl := range podSpecs(t, render(t, file)) {
				checkRestricted(t, id, &tmpl.Spec)
			}
		})
	}
}

func checkRestricted(t *testing.T, id string, spec *corev1.PodSpec) {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Errorf(id+": "+format, args...) }
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		fail("uses a host namespace")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			fail("hostPath volume %s", v.Name)
		}
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		cid := c.Name
		sc := c.SecurityContext
		if sc == nil {
			fail("container %s has no securityContext", cid)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail("container %s: allowPrivilegeEscalation must be false", cid)
		}
		if sc.Privileged != nil && *sc.Privileged {
			fail("container %s is privileged", cid)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			fail("container %s: readOnlyRootFilesystem must be true", cid)
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			fail("container %s: runAsNonRoot must be true", cid)
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = psc.RunAsUser
		}
		if uid != nil && *uid == 0 {
			fail("container %s runs as uid 0", cid)
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			fail("container %s: capabilities must drop ALL", cid)
		} else if len(sc.Capabilities.Add) > 0 {
			fail("container %s adds capabilities %v", cid, sc.Capabilities.Add)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			fail("container %s: seccompProfile must be RuntimeDefault", cid)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				fail("container %s uses hostPort %d", cid, p.HostPort)
			}
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			fail("container %s: needs a memory request and limit", cid)
		}
	}
	for _, c := range spec.Containers {
		if strings.HasPrefix(id, "Deployment/") && (c.LivenessProbe == nil || c.ReadinessProbe == nil) {
			fail("container %s: needs liveness and readiness probes", c.Name)
		}
	}
}

// TestServiceAccountTokens: only the operator's pods get a Kubernetes API token.
func TestServiceAccountTokens(t *testing.T) {
	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run(name, func(t *testing.T) {
			m := render(t, file)
			for _, u := range m.ofKind("ServiceAccount") {
				sa := typed[corev1.ServiceAccount](t, u)
				isOperator := sa.Labels["app.kubernetes.io/component"] == "operator"
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken != isOperator {
					t.Errorf("ServiceAccount %s: automountServiceAccountToken = %v, want %v", sa.Name, deref(sa.AutomountServiceAccountToken), isOperator)
				}
			}
			for id, tmpl := range podSpecs(t, m) {
				isOperator := tmpl.Labels["app.kubernetes.io/component"] == "operator"
				got := tmpl.Spec.AutomountServiceAccountToken
				if got == nil || *got != isOperator {
					t.Errorf("%s: automountServiceAccountToken = %v, want %v", id, deref(got), isOperator)
				}
				if strings.HasPrefix(id, "Deployment/") {
					sa := m.named("ServiceAccount", tmpl.Spec.ServiceAccountName)
					if sa == nil {
						t.Errorf("%s: ServiceAccount %q is not rendered", id, tmpl.Spec.ServiceAccountName)
					}
				}
			}
		})
	}
}

func deref(b *bool) any {
	if b == nil {
		return "unset"
	}
	return *b
}

// TestOperatorRBAC: the operator's Role carries exactly the rules of config/rbac/role.yaml
// (through the chart's synced copy), in its namespace, with no wildcard and no Secret access.
func TestOperatorRBAC(t *testing.T) {
	m := render(t, valueSets(t)["default"])
	roles := m.ofKind("Role")
	if len(roles) != 1 {
		t.Fatalf("%d Roles, want 1", len(roles))
	}
	role := typed[rbacv1.Role](t, roles[0])
	wantRules := rulesOfFile(t)
	var gotResource []rbacv1.PolicyRule
	gotResource = append(gotResource, role.Rules...)
	var gotNonResource []rbacv1.PolicyRule
	for _, u := range m.ofKind("ClusterRole") {
		gotNonResource = append(gotNonResource, typed[rbacv1.ClusterRole](t, u).Rules...)
	}
	var wantResource, wantNonResource []rbacv1.PolicyRule
	for _, r := range wantRules {
		if len(r.NonResourceURLs) > 0 {
			wantNonResource = append(wantNonResource, r)
		} else {
			wantResource = append(wantResource, r)
		}
	}
	if !equalRules(gotResource, wantResource) {
		t.Errorf("Role rules differ from config/rbac/role.yaml:\n got  %+v\n want %+v", gotResource, wantResource)
	}
	if !equalRules(gotNonResource, wantNonResource) {
		t.Errorf("ClusterRole (non-resource) rules differ:\n got  %+v\n want %+v", gotNonResource, wantNonResource)
	}
	for _, r := range append(gotResource, gotNonResource...) {
		for _, s := range append(append(append([]string{}, r.Verbs...), r.Resources...), r.APIGroups...) {
			if s == "*" {
				t.Errorf("wildcard in operator rule %+v", r)
			}
		}
		for _, res := range r.Resources {
			if res == "secrets" {
				t.Errorf("operator may touch Secrets: %+v", r)
			}
		}
	}
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, u := range m.ofKind(kind) {
			var subjects []rbacv1.Subject
			if kind == "RoleBinding" {
				subjects = typed[rbacv1.RoleBinding](t, u).Subjects
			} else {
				subjects = typed[rbacv1.ClusterRoleBinding](t, u).Subjects
			}
			if len(subjects) != 1 || subjects[0].Kind != "ServiceAccount" || subjects[0].Name != "sbor-operator" || subjects[0].Namespace != namespace {
				t.Errorf("%s %s binds %+v, want only ServiceAccount %s/sbor-operator", kind, u.GetName(), subjects, namespace)
			}
		}
	}
}

func rulesOfFile(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	b := mustRead(t, chartDir()+"/files/rbac/role.yaml")
	docs, err := parseManifests(string(b))
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, u := range docs {
		switch u.GetKind() {
		case "ClusterRole":
			rules = append(rules, typed[rbacv1.ClusterRole](t, u).Rules...)
		case "Role":
			rules = append(rules, typed[rbacv1.Role](t, u).Rules...)
		}
	}
	if len(rules) == 0 {
		t.Fatal("files/rbac/role.yaml has no rules")
	}
	return rules
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// TestNoSecretsInConfigMaps: no ConfigMap value holds a Secret's value, a private key or a URL
// with a password, and every database URL comes from a Secret reference, never a literal.
func TestNoSecretsInConfigMaps(t *testing.T) {
	passwordURL := regexp.MustCompile(`://[^/@\s]+:[^/@\s]+@`)
	for _, name := range sortedKeys(valueSets(t)) {
		file := valueSets(t)[name]
		t.Run(name, func(t *testing.T) {
			m := render(t, file)
			var secretValues []string
			for _, u := range m.ofKind("Secret") {
				s := typed[corev1.Secret](t, u)
				for _, v := range s.Data {
					secretValues = append(secretValues, string(v))
				}
				for _, v := range s.StringData {
					secretValues = append(secretValues, v)
				}
			}
			for _, u := range m.ofKind("ConfigMap") {
				cm := typed[corev1.ConfigMap](t, u)
				for k, v := range cm.Data {
					for _, sv := range secretValues {
						if len(sv) >= 8 && (strings.Contains(v, sv) || strings.Contains(v, base64.StdEncoding.EncodeToString([]byte(sv)))) {
							t.Errorf("ConfigMap %s key %s holds a Secret's value", cm.Name, k)
						}
					}
					if strings.Contains(v, "PRIVATE KEY") {
						t.Errorf("ConfigMap %s key %s holds a private key", cm.Name, k)
					}
					if passwordURL.MatchString(v) {
						t.Errorf("ConfigMap %s key %s holds a URL with a password", cm.Name, k)
					}
					if strings.HasSuffix(k, "_DATABASE_URL") || strings.Contains(k, "PASSWORD") {
						t.Errorf("ConfigMap %s carries %s, which belongs in a Secret", cm.Name, k)
					}
				}
			}
			for id, tmpl := range podSpecs(t, m) {
				for _, c := range append(append([]corev1.Container{}, tmpl.Spec.InitContainers...), tmpl.Spec.Containers...) {
					for _, e := range c.Env {
						if strings.HasSuffix(e.Name, "_DATABASE_URL") && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
							t.Errorf("%s container %s: %s must come from a secretKeyRef", id, c.Name, e.Name)
						}
						if passwordURL.MatchString(e.Value) || strings.Contains(e.Value, "PRIVATE KEY") {
							t.Errorf("%s container %s: %s has a secret literal", id, c.Name, e.Name)
						}
					}
				}
			}
		})
	}
}

// TestServiceWiring: each service gets exactly the settings DESIGN.md section 2 and the
// brief name (its own database only, the peers it calls, the key only in the user service).
func TestServiceWiring(t *testing.T) {
	m := render(t, valueSets(t)["default"])
	cm := func(c string) map[string]string {
		u := m.named("ConfigMap", "sbor-"+c)
		if u == nil {
			t.Fatalf("no ConfigMap sbor-%s", c)
		}
		return typed[corev1.ConfigMap](t, u).Data
	}
	url := func(c string) string { return "http://sbor-" + c + ":8080" }
	want := map[string]map[string]string{
		"gateway":      {"SBOR_USER_URL": url("user"), "SBOR_EVENT_URL": url("event"), "SBOR_TICKET_URL": url("ticket"), "SBOR_NOTIFICATION_URL": url("notification")},
		"ticket":       {"SBOR_EVENT_URL": url("event"), "SBOR_USER_URL": url("user"), "KAFKA_BROKERS": "sbor-kafka-kafka-bootstrap:9092"},
		"notification": {"SBOR_TICKET_URL": url("ticket"), "KAFKA_BROKERS": "sbor-kafka-kafka-bootstrap:9092"},
		"event":        {"KAFKA_BROKERS": "sbor-kafka-kafka-bootstrap:9092", "SBOR_REMINDER_INTERVAL": "0", "SBOR_REMINDER_LEAD": "24h"},
		"user":         {"SBOR_JWT_PRIVATE_KEY_FILE": "/var/run/sbor/jwt/signing-key.pem"},
		"operator":     {"SBOR_EVENT_URL": url("event"), "KAFKA_BROKERS": "sbor-kafka-kafka-bootstrap:9092"},
	}
	for c, kv := range want {
		data := cm(c)
		for k, v := range kv {
			if data[k] != v {
				t.Errorf("%s: %s = %q, want %q", c, k, data[k], v)
			}
		}
		if c != "user" && data["SBOR_JWT_PRIVATE_KEY_FILE"] != "" {
			t.Errorf("%s gets the signing key", c)
		}
		if (c == "gateway" || c == "user") && data["KAFKA_BROKERS"] != "" {
			t.Errorf("%s gets Kafka, which it does not use", c)
		}
	}
	for _, c := range []string{"gateway", "user", "event", "ticket", "notification", "operator"} {
		d := typed[appsv1.Deployment](t, m.named("Deployment", "sbor-"+c))
		var dbEnv []string
		mountsKey := false
		for _, ctr := range append(append([]corev1.Container{}, d.Spec.Template.Spec.InitContainers...), d.Spec.Template.Spec.Containers...) {
			for _, e := range ctr.Env {
				if strings.HasSuffix(e.Name, "_DATABASE_URL") {
					dbEnv = append(dbEnv, e.Name+"<-"+e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key)
				}
			}
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "sbor-jwt" {
				mountsKey = true
			}
		}
		wantDB := []string(nil)
		if c != "gateway" && c != "operator" {
			env := "SBOR_" + strings.ToUpper(c) + "_DATABASE_URL<-sbor-" + c + "-db-app/uri"
			wantDB = []string{env, env} // migrate init container and the service
		}
		if strings.Join(dbEnv, ",") != strings.Join(wantDB, ",") {
			t.Errorf("%s: database env %v, want %v", c, dbEnv, wantDB)
		}
		if mountsKey != (c == "user") {
			t.Errorf("%s: mounts the signing key = %v", c, mountsKey)
		}
		if args := d.Spec.Template.Spec.Containers[0].Args; len(args) != 1 || args[0] != c {
			t.Errorf("%s: args %v, want [%s]", c, args, c)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
