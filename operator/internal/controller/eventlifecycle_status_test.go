package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

func TestSetPhaseSetsReadyWithIt(t *testing.T) {
	evl := &sborv1.EventLifecycle{ObjectMeta: metav1.ObjectMeta{Generation: 4}}
	setPhase(evl, sborv1.PhasePublished, metav1.ConditionFalse, ReasonReconcileFailed, "create CronJob: boom")
	c := meta.FindStatusCondition(evl.Status.Conditions, sborv1.ConditionReady)
	if evl.Status.Phase != sborv1.PhasePublished || c == nil || c.Status != metav1.ConditionFalse ||
		c.Reason != ReasonReconcileFailed || c.ObservedGeneration != 4 {
		t.Fatalf("phase %s, Ready %+v", evl.Status.Phase, c)
	}
	since := c.LastTransitionTime
	setPhase(evl, sborv1.PhaseCancelled, metav1.ConditionTrue, "Cancelled", "cancelled")
	c = meta.FindStatusCondition(evl.Status.Conditions, sborv1.ConditionReady)
	if evl.Status.Phase != sborv1.PhaseCancelled || c.Status != metav1.ConditionTrue || c.Reason != "Cancelled" || len(evl.Status.Conditions) != 1 {
		t.Fatalf("phase %s, conditions %+v", evl.Status.Phase, evl.Status.Conditions)
	}
	if c.LastTransitionTime.Before(&since) {
		t.Fatalf("transition time went back")
	}
}

func TestConditionsAndObservedGeneration(t *testing.T) {
	starts := time.Date(2032, 2, 14, 20, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "Valentine's jazz", starts, starts.Add(2*time.Hour))
	create(t, evl)
	got := waitFor(t, evl, "Ready", func(e *sborv1.EventLifecycle) error {
		if c := meta.FindStatusCondition(e.Status.Conditions, sborv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	ready := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReady)
	sched := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReminderScheduled)
	if ready.Reason != "Published" || !strings.Contains(ready.Message, "2032-02-13T20:00:00Z") {
		t.Errorf("Ready = %+v", ready)
	}
	if sched == nil || sched.Status != metav1.ConditionTrue || sched.Reason != ReasonCronJobScheduled {
		t.Errorf("ReminderScheduled = %+v", sched)
	}
	if got.Status.ObservedGeneration != got.Generation || ready.ObservedGeneration != got.Generation {
		t.Errorf("observedGeneration %d / Ready %d, generation %d", got.Status.ObservedGeneration, ready.ObservedGeneration, got.Generation)
	}
	if tr := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionTopicsReady); tr == nil {
		t.Errorf("no TopicsReady condition")
	}
	waitForEvent(t, evl.Namespace, evl.Name, "PhasePublished")

	updateSpec(t, evl, func(s *sborv1.EventLifecycleSpec) { s.Title, s.Version = "Valentine's jazz (sold out)", 2 })
	waitFor(t, evl, "new generation observed", func(e *sborv1.EventLifecycle) error {
		if e.Generation < 2 || e.Status.ObservedGeneration != e.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", e.Status.ObservedGeneration, e.Generation)
		}
		return nil
	})
}

func TestTopicsReadyFollowsTheTopicState(t *testing.T) {
	starts := time.Date(2032, 3, 1, 10, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "Topics", starts, starts.Add(time.Hour))
	create(t, evl)
	t.Cleanup(func() { testTopics.Set(TopicStatus{}) })

	for _, st := range []TopicStatus{
		{metav1.ConditionFalse, ReasonKafkaTopicsPending, "1 of 6 KafkaTopic resources are not Ready yet"},
		{metav1.ConditionTrue, ReasonTopicsExist, "all 6 topics exist in Kafka"},
	} {
		testTopics.Set(st)
		waitFor(t, evl, "TopicsReady "+string(st.Status), func(e *sborv1.EventLifecycle) error {
			c := meta.FindStatusCondition(e.Status.Conditions, sborv1.ConditionTopicsReady)
			if c == nil || c.Status != st.Status || c.Reason != st.Reason || c.Message != st.Message {
				return fmt.Errorf("TopicsReady = %+v", c)
			}
			return nil
		})
	}
}

func TestPrinterColumns(t *testing.T) {
	ctx := context.Background()
	var crd apiextensionsv1.CustomResourceDefinition
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: "eventlifecycles.sbor.dev"}, &crd); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(crd.Spec.Names.ShortNames, "evl") || crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
		t.Errorf("names %+v scope %s", crd.Spec.Names, crd.Spec.Scope)
	}
	var cols []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Priority == 0 {
			cols = append(cols, c.Name+"="+c.JSONPath)
		}
	}
	want := []string{"Title=.spec.title", "Phase=.status.phase", "Starts=.spec.startsAt",
		"Reminder=.status.reminderScheduledFor", "Age=.metadata.creationTimestamp"}
	if !slices.Equal(cols, want) {
		t.Fatalf("printer columns from the server:\n got  %v\n want %v", cols, want)
	}

	// The server's Table for `kubectl get evl`: its cells are what kubectl prints.
	starts := time.Date(2032, 4, 18, 19, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "Spring gala", starts, starts.Add(3*time.Hour))
	create(t, evl)
	// Neighbours in the other phases, for the listing a person sees.
	soon := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	tonight := newEventLifecycle(testNamespace, "Tonight: jazz", soon, soon.Add(2*time.Hour))
	create(t, tonight)
	past := time.Now().Add(-26 * time.Hour).Truncate(time.Second)
	over := newEventLifecycle(testNamespace, "Yesterday's meetup", past, past.Add(2*time.Hour))
	create(t, over)
	later := time.Date(2032, 6, 6, 12, 0, 0, 0, time.UTC)
	cancelled := newEventLifecycle(testNamespace, "Summer fair", later, later.Add(8*time.Hour))
	cancelled.Spec.Cancelled = true
	create(t, cancelled)
	for _, e := range []*sborv1.EventLifecycle{evl, tonight, over, cancelled} {
		waitFor(t, e, "reconciled", func(e *sborv1.EventLifecycle) error {
			if e.Status.ObservedGeneration != e.Generation || e.Status.Phase == "" {
				return fmt.Errorf("not reconciled yet")
			}
			return nil
		})
	}
	table := getTable(t, testNamespace)
	var header []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			header = append(header, c.Name)
		}
	}
	if !slices.Equal(header, []string{"Name", "Title", "Phase", "Starts", "Reminder", "Age"}) {
		t.Fatalf("table columns = %v", header)
	}
	var row []any
	for _, r := range table.Rows {
		if r.Cells[0] == evl.Name {
			row = r.Cells
		}
	}
	if row == nil {
		t.Fatalf("no row for %s", evl.Name)
	}
	wantCells := []any{evl.Name, "Spring gala", "Published", "2032-04-18T19:00:00Z", "2032-04-17T19:00:00Z"}
	for i, w := range wantCells {
		if row[i] != w {
			t.Errorf("cell %s = %v, want %v", table.ColumnDefinitions[i].Name, row[i], w)
		}
	}

	// And what a person sees, with the kubectl built beside kube-apiserver.
	if _, err := os.Stat(filepath.Join(testEnv.AssetsDir, "kubectl")); err == nil {
		out, err := runKubectl(t, "get", "evl", "-n", testNamespace, "--sort-by=.spec.startsAt")
		if err != nil {
			t.Fatalf("kubectl get evl: %v\n%s", err, out)
		}
		t.Logf("kubectl get evl -n %s\n%s", testNamespace, out)
		if !strings.Contains(out, "NAME") || !strings.Contains(out, "REMINDER") || !strings.Contains(out, "Spring gala") {
			t.Errorf("kubectl output:\n%s", out)
		}
		out, _ = runKubectl(t, "get", "evl", "-n", testNamespace, evl.Name, "-o", "wide")
		t.Logf("kubectl get evl %s -o wide\n%s", evl.Name, out)
	}
}

// getTable asks the API server for EventLifecycles as a Table, as kubectl get does.
func getTable(t *testing.T, ns string) *metav1.Table {
	t.Helper()
	cfg := rest.CopyConfig(testEnv.Config)
	cfg.GroupVersion = &sborv1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body, err := rc.Get().Namespace(ns).Resource("eventlifecycles").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("table: %v", err)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatal(err)
	}
	return &table
}

func TestSchemaValidation(t *testing.T) {
	ctx := context.Background()
	starts := time.Date(2032, 5, 1, 10, 0, 0, 0, time.UTC)

	invalid := func(what string, err error, message string) {
		t.Helper()
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), message) {
			t.Errorf("%s: got %v, want Invalid with %q", what, err, message)
		}
	}
	bad := newEventLifecycle(directNamespace, "Backwards", starts, starts.Add(-time.Hour))
	invalid("ends before start", k8sClient.Create(ctx, bad), "endsAt must be after startsAt")
	bad = newEventLifecycle(directNamespace, "", starts, starts.Add(time.Hour))
	invalid("empty title", k8sClient.Create(ctx, bad), "spec.title")
	bad = newEventLifecycle(directNamespace, "Bad id", starts, starts.Add(time.Hour))
	bad.Spec.EventID = "not-a-uuid"
	invalid("event id", k8sClient.Create(ctx, bad), "spec.eventID")
	bad = newEventLifecycle(directNamespace, "Bad lead", starts, starts.Add(time.Hour))
	bad.Spec.ReminderLead = &metav1.Duration{Duration: -time.Hour}
	invalid("negative lead", k8sClient.Create(ctx, bad), "reminderLead must be a duration between 1s and 8760h")

	evl := newEventLifecycle(directNamespace, "Transitions", starts, starts.Add(time.Hour))
	evl.Spec.Version = 5
	evl.Spec.Cancelled = true
	create(t, evl)
	update := func(change func(*sborv1.EventLifecycle)) error {
		cur := getEVL(t, evl)
		change(cur)
		return k8sClient.Update(ctx, cur)
	}
	invalid("version goes back", update(func(e *sborv1.EventLifecycle) { e.Spec.Version = 4 }), "version must not decrease")
	invalid("un-cancel", update(func(e *sborv1.EventLifecycle) { e.Spec.Cancelled = false }), "cancelled cannot be undone")
	invalid("event id changes", update(func(e *sborv1.EventLifecycle) { e.Spec.EventID = "11111111-2222-3333-4444-555555555555" }), "eventID is immutable")
	if err := update(func(e *sborv1.EventLifecycle) { e.Spec.Version = 6; e.Spec.Title = "Transitions II" }); err != nil {
		t.Errorf("a valid update was refused: %v", err)
	}
	if err := update(func(e *sborv1.EventLifecycle) { e.Status.Phase = "Exploded" }); err != nil {
		t.Errorf("status through the main resource is ignored, not refused: %v", err)
	}
	cur := getEVL(t, evl)
	cur.Status.Phase = "Exploded"
	invalid("unknown phase", k8sClient.Status().Update(ctx, cur), "status.phase")
}
