//go:build kind

// Package kind is the end-to-end suite on a real Kubernetes cluster: it creates a kind
// cluster with sbor's kind Go API, installs everything with hack/kind-up.sh (ingress
// controller, CloudNativePG, Strimzi, the image, the chart), then drives the fifteen flows of
// DESIGN.md through the ingress, a reminder through the operator's CronJob, and checks that
// the NetworkPolicies are enforced.
//
// It needs Docker and network access to container registries, so it runs only on demand:
//
//	go test -tags kind -timeout 60m -v ./test/kind/
//
// SBOR_KIND_CLUSTER (default sbor-e2e) names the cluster; an existing cluster of that name is
// reused and kept, a cluster the suite created is deleted at the end unless SBOR_KIND_KEEP=1.
// SBOR_KIND_HTTP_PORT (default 18080) is the host port of the ingress.
package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
)

const (
	namespace = "sbor"
	release   = "sbor"
	// nodePort is Traefik's web entry point (hack/kind-up.sh); kind publishes it on the host.
	nodePort = 30080
)

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// platform is what the flows need: the gateway's URL through the ingress and a client of the
// cluster.
type platform struct {
	baseURL string
	kube    client.Client
	http    *http.Client
}

// setUp creates (or reuses) the kind cluster and installs the platform with hack/kind-up.sh.
func setUp(t *testing.T) *platform {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("the kind suite needs Docker")
	}
	name := getenv("SBOR_KIND_CLUSTER", "sbor-e2e")
	port := getenv("SBOR_KIND_HTTP_PORT", "18080")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")

	provider := cluster.NewProvider(cluster.ProviderWithDocker())
	existing, err := provider.List()
	if err != nil {
		t.Fatalf("list kind clusters: %v", err)
	}
	reuse := false
	for _, c := range existing {
		reuse = reuse || c == name
	}
	if reuse {
		t.Logf("reusing kind cluster %s", name)
		if err := provider.ExportKubeConfig(name, kubeconfig, false); err != nil {
			t.Fatal(err)
		}
	} else {
		var hostPort int32
		if _, err := fmt.Sscan(port, &hostPort); err != nil {
			t.Fatalf("SBOR_KIND_HTTP_PORT=%q: %v", port, err)
		}
		config := &kindv1alpha4.Cluster{
			TypeMeta: kindv1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
			Nodes: []kindv1alpha4.Node{{
				Role: kindv1alpha4.ControlPlaneRole,
				ExtraPortMappings: []kindv1alpha4.PortMapping{{
					ContainerPort: nodePort, HostPort: hostPort, ListenAddress: "127.0.0.1", Protocol: kindv1alpha4.PortMappingProtocolTCP,
				}},
			}},
		}
		t.Logf("creating kind cluster %s", name)
		err := provider.Create(name,
			cluster.CreateWithV1Alpha4Config(config),
			cluster.CreateWithKubeconfigPath(kubeconfig),
			cluster.CreateWithWaitForReady(5*time.Minute),
			cluster.CreateWithDisplayUsage(false),
			cluster.CreateWithDisplaySalutation(false),
		)
		if err != nil {
			t.Fatalf("create kind cluster: %v", err)
		}
		if os.Getenv("SBOR_KIND_KEEP") != "1" {
			t.Cleanup(func() {
				if err := provider.Delete(name, kubeconfig); err != nil {
					t.Logf("delete kind cluster: %v", err)
				}
			})
		}
	}

	// Everything else is the recipe users run: hack/kind-up.sh finds the cluster and installs.
	up := exec.Command(filepath.Join(repoRoot(t), "hack", "kind-up.sh"))
	up.Dir = repoRoot(t)
	up.Env = append(os.Environ(),
		"KUBECONFIG="+kubeconfig, "SBOR_KIND_CLUSTER="+name, "SBOR_KIND_HTTP_PORT="+port, "SBOR_NAMESPACE="+namespace)
	up.Stdout, up.Stderr = os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		t.Fatalf("hack/kind-up.sh: %v", err)
	}

	raw, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	restConfig, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kube, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &platform{baseURL: "http://127.0.0.1:" + port, kube: kube, http: &http.Client{Timeout: 15 * time.Second}}
}

// call sends a JSON request through the ingress and checks the status; out, when not nil,
// receives the decoded answer.
func (p *platform) call(t *testing.T, method, path, token string, body any, wantStatus int, out any, headers ...string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, p.baseURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

type userJSON struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

type eventJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Title  string `json:"title"`
}

type ticketTypeJSON struct {
	ID        string `json:"id"`
	Sold      int    `json:"sold"`
	Available int    `json:"available"`
}

type ticketJSON struct {
	ID     string `json:"id"`
	Code   string `json:"code"`
	Status string `json:"status"`
}

type notificationJSON struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// eventually retries check until it returns true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for !check() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func (p *platform) register(t *testing.T, who string) (userJSON, tokenPair) {
	t.Helper()
	email := fmt.Sprintf("%s-%d@example.com", who, time.Now().UnixNano())
	password := "a long passphrase for " + who
	var u userJSON
	p.call(t, "POST", "/api/auth/register", "", map[string]string{"email": email, "name": who, "password": password}, http.StatusCreated, &u)
	if u.Role != "user" {
		t.Fatalf("new account has role %q", u.Role)
	}
	var tp tokenPair
	p.call(t, "POST", "/api/auth/login", "", map[string]string{"email": email, "password": password}, http.StatusOK, &tp)
	return u, tp
}

func (p *platform) notifications(t *testing.T, token string) []notificationJSON {
	var n page[notificationJSON]
	p.call(t, "GET", "/api/notifications", token, nil, http.StatusOK, &n)
	return n.Items
}

func hasNotification(items []notificationJSON, typ, eventID string) bool {
	for _, n := range items {
		if n.Type == typ && n.EventID == eventID {
			return true
		}
	}
	return false
}

func TestPlatform(t *testing.T) {
	p := setUp(t)
	ctx := t.Context()

	// Flows 1-3: accounts, tokens, organizer role.
	_, organizerTokens := p.register(t, "organizer")
	var again tokenPair
	p.call(t, "POST", "/api/auth/refresh", "", map[string]string{"refresh_token": organizerTokens.RefreshToken}, http.StatusOK, &again)
	p.call(t, "POST", "/api/auth/refresh", "", map[string]string{"refresh_token": organizerTokens.RefreshToken}, http.StatusUnauthorized, nil)
	var me userJSON
	p.call(t, "GET", "/api/users/me", again.AccessToken, nil, http.StatusOK, &me)
	p.call(t, "GET", "/api/users/me", "", nil, http.StatusUnauthorized, nil)
	var promoted struct {
		User userJSON `json:"user"`
		tokenPair
	}
	p.call(t, "POST", "/api/users/me/become-organizer", again.AccessToken, nil, http.StatusOK, &promoted)
	if promoted.User.Role != "organizer" || promoted.AccessToken == "" {
		t.Fatalf("become-organizer: %+v", promoted)
	}
	org := promoted.AccessToken
	_, buyerTokens := p.register(t, "buyer")
	buyer := buyerTokens.AccessToken

	// Internal routes are not exposed through the gateway.
	p.call(t, "GET", "/internal/jwks", "", nil, http.StatusNotFound, nil)

	// Flows 4-7: an event, edited, published, with a ticket type.
	starts := time.Now().UTC().Add(72 * time.Hour).Truncate(time.Second)
	eventBody := map[string]any{"title": "Kind night", "description": "e2e", "venue": "Hall 1",
		"starts_at": starts.Format(time.RFC3339), "ends_at": starts.Add(3 * time.Hour).Format(time.RFC3339)}
	var ev eventJSON
	p.call(t, "POST", "/api/events", org, eventBody, http.StatusCreated, &ev)
	if ev.Status != "draft" {
		t.Fatalf("new event status %q", ev.Status)
	}
	p.call(t, "POST", "/api/events", buyer, eventBody, http.StatusForbidden, nil)
	// A client cannot claim a role with the gateway's identity headers: the gateway drops them.
	p.call(t, "POST", "/api/events", buyer, eventBody, http.StatusForbidden, nil, "X-User-Role", "organizer")
	eventBody["title"] = "Kind night (updated)"
	p.call(t, "PUT", "/api/events/"+ev.ID, org, eventBody, http.StatusOK, &ev)
	p.call(t, "POST", "/api/events/"+ev.ID+"/publish", org, nil, http.StatusOK, &ev)
	if ev.Status != "published" {
		t.Fatalf("published event status %q", ev.Status)
	}
	p.call(t, "PUT", "/api/events/"+ev.ID, org, eventBody, http.StatusConflict, nil)
	var tt ticketTypeJSON
	p.call(t, "POST", "/api/events/"+ev.ID+"/ticket-types", org, map[string]any{
		"type": "standard", "price_cents": 1500, "currency": "EUR", "quantity": 2,
		"sales_start": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339),
		"sales_end":   starts.Format(time.RFC3339),
	}, http.StatusCreated, &tt)

	// Flow 8: purchase, idempotent on retry; flow 9: the buyer is notified.
	var ticket, retried ticketJSON
	purchase := map[string]string{"ticket_type_id": tt.ID}
	p.call(t, "POST", "/api/events/"+ev.ID+"/tickets", buyer, purchase, http.StatusCreated, &ticket, "Idempotency-Key", "kind-e2e-1")
	p.call(t, "POST", "/api/events/"+ev.ID+"/tickets", buyer, purchase, http.StatusCreated, &retried, "Idempotency-Key", "kind-e2e-1")
	if retried.ID != ticket.ID || ticket.Status != "active" || ticket.Code == "" {
		t.Fatalf("purchase %+v, retry %+v", ticket, retried)
	}
	eventually(t, 2*time.Minute, "the ticket.purchased notification", func() bool {
		return hasNotification(p.notifications(t, buyer), "ticket.purchased", ev.ID)
	})

	// Flow 10: the buyer's tickets; the QR image of their ticket, hidden from others.
	var mine page[ticketJSON]
	p.call(t, "GET", "/api/tickets", buyer, nil, http.StatusOK, &mine)
	if len(mine.Items) != 1 || mine.Items[0].ID != ticket.ID {
		t.Fatalf("GET /api/tickets: %+v", mine)
	}
	p.call(t, "GET", "/api/tickets/"+ticket.ID+"/qr", org, nil, http.StatusNotFound, nil)

	// Flow 15: the reminder, sent by a Job created from the operator's CronJob, as
	// `kubectl create job --from=cronjob/...` does.
	cronJob := waitReminderCronJob(t, ctx, p, ev.ID)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "manual-" + ev.ID[:8], Namespace: namespace,
			Labels: cronJob.Spec.JobTemplate.Labels, Annotations: map[string]string{"cronjob.kubernetes.io/instantiate": "manual"}},
		Spec: cronJob.Spec.JobTemplate.Spec,
	}
	if err := p.kube.Create(ctx, job); err != nil {
		t.Fatalf("create reminder Job: %v", err)
	}
	eventually(t, 3*time.Minute, "the reminder Job to succeed", func() bool {
		var j batchv1.Job
		if err := p.kube.Get(ctx, client.ObjectKeyFromObject(job), &j); err != nil {
			t.Fatal(err)
		}
		if j.Status.Failed > 0 && ptr.Deref(j.Spec.BackoffLimit, 6) <= j.Status.Failed {
			t.Fatalf("reminder Job failed: %+v", j.Status)
		}
		return j.Status.Succeeded > 0
	})
	eventually(t, 2*time.Minute, "the event.reminder notification", func() bool {
		return hasNotification(p.notifications(t, buyer), "event.reminder", ev.ID)
	})

	// Flows 11-12: validation and check-in by the event's organizer only, once.
	var verdict struct {
		Valid  bool   `json:"valid"`
		Status string `json:"status"`
	}
	p.call(t, "POST", "/api/tickets/"+ticket.Code+"/validate", org, nil, http.StatusOK, &verdict)
	if !verdict.Valid || verdict.Status != "active" {
		t.Fatalf("validate: %+v", verdict)
	}
	p.call(t, "POST", "/api/tickets/"+ticket.Code+"/validate", buyer, nil, http.StatusForbidden, nil)
	var used ticketJSON
	p.call(t, "POST", "/api/tickets/"+ticket.Code+"/checkin", org, nil, http.StatusOK, &used)
	if used.Status != "used" {
		t.Fatalf("checkin: %+v", used)
	}
	p.call(t, "POST", "/api/tickets/"+ticket.Code+"/checkin", org, nil, http.StatusConflict, nil)

	// Flows 13-14: a second buyer's ticket is cancelled with the event, and they are notified.
	_, secondTokens := p.register(t, "second")
	var second ticketJSON
	p.call(t, "POST", "/api/events/"+ev.ID+"/tickets", secondTokens.AccessToken, purchase, http.StatusCreated, &second)
	p.call(t, "POST", "/api/events/"+ev.ID+"/tickets", secondTokens.AccessToken, purchase, http.StatusConflict, nil) // sold out: quantity 2
	p.call(t, "POST", "/api/events/"+ev.ID+"/cancel", org, nil, http.StatusOK, &ev)
	p.call(t, "POST", "/api/events/"+ev.ID+"/cancel", org, nil, http.StatusConflict, nil)
	eventually(t, 2*time.Minute, "the second ticket to be cancelled", func() bool {
		var l page[ticketJSON]
		p.call(t, "GET", "/api/tickets", secondTokens.AccessToken, nil, http.StatusOK, &l)
		return len(l.Items) == 1 && l.Items[0].Status == "cancelled"
	})
	eventually(t, 2*time.Minute, "the event.cancelled notification", func() bool {
		return hasNotification(p.notifications(t, secondTokens.AccessToken), "event.cancelled", ev.ID)
	})
	eventually(t, 2*time.Minute, "the operator to mark the event Cancelled and drop its CronJob", func() bool {
		evl := &unstructured.Unstructured{}
		evl.SetGroupVersionKind(schema.GroupVersionKind{Group: "sbor.dev", Version: "v1alpha1", Kind: "EventLifecycle"})
		if err := p.kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ev.ID}, evl); err != nil {
			return false
		}
		phase, _, _ := unstructured.NestedString(evl.Object, "status", "phase")
		var cj batchv1.CronJob
		gone := apierrors.IsNotFound(p.kube.Get(ctx, client.ObjectKeyFromObject(cronJob), &cj))
		return phase == "Cancelled" && gone
	})

	t.Run("network policies are enforced", func(t *testing.T) {
		// A pod of the namespace that is no part of the design's paths reaches neither a
		// service nor the gateway directly.
		for _, target := range []string{"sbor-user", "sbor-event", "sbor-gateway"} {
			if probeFromStranger(t, ctx, p, target) {
				t.Errorf("a stranger pod reached %s:8080", target)
			}
		}
	})
}

// waitReminderCronJob finds the CronJob the operator keeps for an event (the EventLifecycle
// named after the event records it).
func waitReminderCronJob(t *testing.T, ctx context.Context, p *platform, eventID string) *batchv1.CronJob {
	t.Helper()
	var found *batchv1.CronJob
	eventually(t, 3*time.Minute, "the operator's reminder CronJob", func() bool {
		evl := &unstructured.Unstructured{}
		evl.SetGroupVersionKind(schema.GroupVersionKind{Group: "sbor.dev", Version: "v1alpha1", Kind: "EventLifecycle"})
		if err := p.kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: eventID}, evl); err != nil {
			return false
		}
		name, _, _ := unstructured.NestedString(evl.Object, "status", "reminderCronJob")
		if name == "" {
			return false
		}
		var cj batchv1.CronJob
		if err := p.kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cj); err != nil {
			return false
		}
		if cj.Spec.JobTemplate.Spec.Template.Labels["app.kubernetes.io/component"] != "reminder" {
			t.Fatalf("CronJob %s: reminder pods are not labelled component=reminder (the NetworkPolicy would block them): %v",
				name, cj.Spec.JobTemplate.Spec.Template.Labels)
		}
		found = &cj
		return true
	})
	return found
}

// probeFromStranger runs a restricted pod with an unrelated label that tries the target's
// HTTP port; it reports whether the connection succeeded.
func probeFromStranger(t *testing.T, ctx context.Context, p *platform, target string) bool {
	t.Helper()
	name := "stranger-" + strings.TrimPrefix(target, "sbor-")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": "stranger"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name:    "curl",
				Image:   "curlimages/curl:8.15.0",
				Command: []string{"curl", "-sS", "--max-time", "5", "http://" + target + ":8080/healthz"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	_ = p.kube.Delete(ctx, pod)
	if err := p.kube.Create(ctx, pod); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() { _ = p.kube.Delete(context.Background(), pod) })
	var phase corev1.PodPhase
	eventually(t, 2*time.Minute, name+" to finish", func() bool {
		var got corev1.Pod
		if err := p.kube.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
			t.Fatal(err)
		}
		phase = got.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed
	})
	return phase == corev1.PodSucceeded
}
