package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// directReconciler reconciles resources in directNamespace (which the manager does not watch)
// on the real API server, with a clock the test moves.
func directReconciler(t *testing.T, clock *time.Time) *EventLifecycleReconciler {
	t.Helper()
	cs, err := kubernetes.NewForConfig(testEnv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); b.Shutdown() })
	return &EventLifecycleReconciler{
		Client: k8sClient, APIReader: k8sClient, Scheme: testScheme,
		Recorder: b.NewRecorder(testScheme, "sbor.dev/operator"), Reminder: testReminder,
		Now: func() time.Time { return *clock },
	}
}

func reconcileAt(t *testing.T, r *EventLifecycleReconciler, evl *sborv1.EventLifecycle) ctrl.Result {
	t.Helper()
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(evl)})
	if err != nil {
		t.Fatalf("Reconcile at %s: %v", r.Now().Format(time.RFC3339), err)
	}
	return res
}

func cronJobOf(evl *sborv1.EventLifecycle) (*batchv1.CronJob, error) {
	var cj batchv1.CronJob
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: evl.Namespace, Name: cronJobName(evl)}, &cj)
	return &cj, err
}

// TestReconcileTimeline walks one event through its life with a moving clock: scheduled,
// fired, started, over — and checks the RequeueAfter that brings the reconciler back at each
// step.
func TestReconcileTimeline(t *testing.T) {
	starts := time.Date(2031, 8, 20, 18, 0, 0, 0, time.UTC)
	ends := starts.Add(2 * time.Hour)
	reminderAt := starts.Add(-24 * time.Hour)
	clock := time.Date(2031, 8, 1, 12, 0, 0, 0, time.UTC)
	r := directReconciler(t, &clock)
	evl := newEventLifecycle(directNamespace, "Timeline", starts, ends)
	create(t, evl)

	res := reconcileAt(t, r, evl)
	if want := reminderAt.Sub(clock) + time.Second; res.RequeueAfter != want {
		t.Errorf("scheduled: RequeueAfter %s, want %s (the reminder time)", res.RequeueAfter, want)
	}
	cj, err := cronJobOf(evl)
	if err != nil || cj.Spec.Schedule != "0 18 19 8 *" {
		t.Fatalf("CronJob: %v %+v", err, cj.Spec.Schedule)
	}

	clock = reminderAt.Add(30 * time.Second) // the CronJob fires now
	res = reconcileAt(t, r, evl)
	if want := starts.Sub(clock) + time.Second; res.RequeueAfter != want {
		t.Errorf("fired: RequeueAfter %s, want %s (the start)", res.RequeueAfter, want)
	}
	if _, err := cronJobOf(evl); err != nil {
		t.Errorf("the CronJob that is firing was removed: %v", err)
	}
	got := getEVL(t, evl)
	if c := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReminderScheduled); c == nil || c.Reason != ReasonCronJobFired {
		t.Errorf("fired: ReminderScheduled = %+v", c)
	}
	var jobs batchv1.JobList
	_ = k8sClient.List(context.Background(), &jobs, client.InNamespace(directNamespace), client.MatchingLabels{LabelEventID: evl.Spec.EventID})
	if len(jobs.Items) != 0 {
		t.Errorf("an immediate Job raced the CronJob: %d Jobs", len(jobs.Items))
	}

	clock = starts.Add(time.Minute) // started, and event.reminder never came
	res = reconcileAt(t, r, evl)
	if want := ends.Sub(clock) + time.Second; res.RequeueAfter != want {
		t.Errorf("started: RequeueAfter %s, want %s (the end)", res.RequeueAfter, want)
	}
	if err := isNotFound(func() error { _, err := cronJobOf(evl); return err }()); err != nil {
		t.Errorf("started: CronJob: %v", err)
	}
	got = getEVL(t, evl)
	if c := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReminderScheduled); got.Status.Phase != sborv1.PhasePublished || c.Reason != ReasonEventStarted {
		t.Errorf("started: phase %s ReminderScheduled %+v", got.Status.Phase, c)
	}

	clock = ends
	res = reconcileAt(t, r, evl)
	got = getEVL(t, evl)
	if res.RequeueAfter != 0 || got.Status.Phase != sborv1.PhaseFinished {
		t.Errorf("over: RequeueAfter %s phase %s", res.RequeueAfter, got.Status.Phase)
	}
	ready := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReady)
	if ready.Status != metav1.ConditionTrue || ready.Reason != "Finished" {
		t.Errorf("over: Ready %+v", ready)
	}
	for _, reason := range []string{"CronJobCreated", "CronJobDeleted", "PhasePublished", "PhaseFinished"} {
		waitForEvent(t, directNamespace, evl.Name, reason)
	}
}

func TestReconcileReportsAFailureInReady(t *testing.T) {
	clock := time.Date(2031, 8, 1, 12, 0, 0, 0, time.UTC)
	r := directReconciler(t, &clock)
	starts := time.Date(2031, 9, 1, 18, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(directNamespace, "Squatted", starts, starts.Add(time.Hour))
	// Someone else's CronJob already has the name.
	squatter := (&EventLifecycleReconciler{Reminder: testReminder}).desiredCronJob(evl, starts.Add(-time.Hour))
	create(t, squatter)
	create(t, evl)

	_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(evl)})
	if err == nil || !strings.Contains(err.Error(), "not owned by") {
		t.Fatalf("Reconcile: %v", err)
	}
	got := getEVL(t, evl)
	ready := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReady)
	if got.Status.Phase != sborv1.PhasePublished || ready == nil || ready.Status != metav1.ConditionFalse ||
		ready.Reason != ReasonReconcileFailed || !strings.Contains(ready.Message, "not owned by") {
		t.Fatalf("phase %s Ready %+v", got.Status.Phase, ready)
	}
	ev := waitForEvent(t, directNamespace, evl.Name, ReasonReconcileFailed)
	if ev.Type != "Warning" {
		t.Errorf("event type %s", ev.Type)
	}
}

func TestReconcileLeavesADeletedResourceToTheGarbageCollector(t *testing.T) {
	clock := time.Date(2031, 8, 1, 12, 0, 0, 0, time.UTC)
	r := directReconciler(t, &clock)
	starts := time.Date(2031, 9, 2, 18, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(directNamespace, "Going away", starts, starts.Add(time.Hour))
	controllerutil.AddFinalizer(evl, "sbor.dev/test-hold") // keeps it around, being deleted
	create(t, evl)
	if err := k8sClient.Delete(context.Background(), evl); err != nil {
		t.Fatal(err)
	}
	reconcileAt(t, r, evl)
	if err := isNotFound(func() error { _, err := cronJobOf(evl); return err }()); err != nil {
		t.Errorf("a CronJob for a resource being deleted: %v", err)
	}
	cur := getEVL(t, evl)
	controllerutil.RemoveFinalizer(cur, "sbor.dev/test-hold")
	if err := k8sClient.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	// Gone: Reconcile of a missing resource is a no-op.
	eventually(t, 5*time.Second, "deleted", func() error {
		return isNotFound(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(evl), cur))
	})
	if res := reconcileAt(t, r, evl); res.RequeueAfter != 0 {
		t.Errorf("RequeueAfter %s for a missing resource", res.RequeueAfter)
	}
}
