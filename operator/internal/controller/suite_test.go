package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
	"github.com/sbor-dev/sbor/operator/internal/testenv"
)

// One control plane and one manager for the package: envtest costs seconds to start.
const (
	// testNamespace is watched by the manager's reconciler.
	testNamespace = "sbor-test"
	// directNamespace is not watched: tests there call Reconcile themselves with a fixed clock.
	directNamespace = "sbor-direct"
	testImage       = "registry.example/sbor:test"
	testEventURL    = "http://sbor-event.sbor.svc:8080"
)

var (
	testEnv    *testenv.Env
	k8sClient  client.Client // straight to the API server, no cache
	testScheme = runtime.NewScheme()
	// testTopics feeds the TopicsReady condition of the manager's reconciler.
	testTopics   = NewTopicState()
	testReminder = ReminderJob{
		Image: testImage, Command: []string{"/sbor"}, EventServiceURL: testEventURL, Attempts: 3,
		ServiceAccountName: "sbor-reminder", PodLabels: map[string]string{"sbor.dev/reminder": "true"},
	}
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	defer kafkatest.Shutdown()
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	_ = clientgoscheme.AddToScheme(testScheme)
	_ = sborv1.AddToScheme(testScheme)
	_ = apiextensionsv1.AddToScheme(testScheme)

	start := time.Now()
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	testEnv = env
	fmt.Fprintf(os.Stderr, "envtest up in %s (assets %s)\n", time.Since(start).Round(time.Millisecond), env.AssetsDir)

	if k8sClient, err = client.New(env.Config, client.Options{Scheme: testScheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, ns := range []string{testNamespace, directNamespace} {
		if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{testNamespace: {}}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rec := &EventLifecycleReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: testScheme,
		Recorder: mgr.GetEventRecorder("sbor.dev/operator"), Reminder: testReminder, Topics: testTopics,
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return m.Run()
}

// newEventLifecycle returns an EventLifecycle named after a fresh event id, not yet created.
func newEventLifecycle(ns, title string, starts, ends time.Time) *sborv1.EventLifecycle {
	id := uuid.NewString()
	return &sborv1.EventLifecycle{
		ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: ns},
		Spec: sborv1.EventLifecycleSpec{
			EventID: id, Title: title, Version: 1,
			StartsAt: metav1.NewTime(starts), EndsAt: metav1.NewTime(ends),
		},
	}
}

// create creates obj and deletes it when the test ends.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() {
		_ = client.IgnoreNotFound(k8sClient.Delete(context.Background(), obj))
	})
}

// eventually retries check until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getEVL reads the resource fresh from the API server.
func getEVL(t *testing.T, evl *sborv1.EventLifecycle) *sborv1.EventLifecycle {
	t.Helper()
	var got sborv1.EventLifecycle
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(evl), &got); err != nil {
		t.Fatalf("get EventLifecycle %s: %v", evl.Name, err)
	}
	return &got
}

// updateSpec changes the spec with a retry on conflicts.
func updateSpec(t *testing.T, evl *sborv1.EventLifecycle, change func(*sborv1.EventLifecycleSpec)) {
	t.Helper()
	eventually(t, 10*time.Second, "update spec", func() error {
		cur := getEVL(t, evl)
		change(&cur.Spec)
		return k8sClient.Update(context.Background(), cur)
	})
}

// waitFor waits until the resource satisfies ok, and returns it.
func waitFor(t *testing.T, evl *sborv1.EventLifecycle, what string, ok func(*sborv1.EventLifecycle) error) *sborv1.EventLifecycle {
	t.Helper()
	var got *sborv1.EventLifecycle
	eventually(t, 15*time.Second, what, func() error {
		got = getEVL(t, evl)
		return ok(got)
	})
	return got
}

// kubeEvents lists the events.k8s.io Events about the named object.
func kubeEvents(t *testing.T, ns, name string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := k8sClient.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// waitForEvent waits for a Kubernetes Event with reason about the named object.
func waitForEvent(t *testing.T, ns, name, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	eventually(t, 15*time.Second, "event "+reason, func() error {
		for _, e := range kubeEvents(t, ns, name) {
			if e.Reason == reason {
				found = e
				return nil
			}
		}
		return fmt.Errorf("no %s event about %s", reason, name)
	})
	return found
}

// isNotFound passes when err is a NotFound.
func isNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("still there")
	}
	return err
}

// envtestAdmin is a cluster admin for kubectl.
func envtestAdmin() envtest.User {
	return envtest.User{Name: "sbor-test-admin", Groups: []string{"system:masters"}}
}

// uniquePrefix is a Kafka topic prefix no other test uses.
func uniquePrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + "."
}
