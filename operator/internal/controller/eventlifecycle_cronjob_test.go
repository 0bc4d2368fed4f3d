package controller

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// waitCronJob waits for the event's CronJob to satisfy ok.
func waitCronJob(t *testing.T, evl *sborv1.EventLifecycle, what string, ok func(*batchv1.CronJob) error) *batchv1.CronJob {
	t.Helper()
	var cj batchv1.CronJob
	eventually(t, 15*time.Second, what, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: evl.Namespace, Name: cronJobName(evl)}, &cj); err != nil {
			return err
		}
		return ok(&cj)
	})
	return &cj
}

func waitNoCronJob(t *testing.T, evl *sborv1.EventLifecycle) {
	t.Helper()
	eventually(t, 15*time.Second, "CronJob removed", func() error {
		var cj batchv1.CronJob
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: evl.Namespace, Name: cronJobName(evl)}, &cj)
		if err == nil && !cj.DeletionTimestamp.IsZero() {
			return nil // removed; its finalizer-free deletion is only waiting for the garbage collector
		}
		return isNotFound(err)
	})
}

func hasSchedule(s string) func(*batchv1.CronJob) error {
	return func(cj *batchv1.CronJob) error {
		if cj.Spec.Schedule != s {
			return fmt.Errorf("schedule %q, want %q", cj.Spec.Schedule, s)
		}
		return nil
	}
}

func TestCronJobScheduleAndTimeZone(t *testing.T) {
	msk := time.FixedZone("MSK", 3*3600)
	cases := []struct {
		name     string
		starts   time.Time
		lead     *metav1.Duration
		schedule string
		at       time.Time
	}{
		{name: "default lead 24h, seconds dropped", starts: time.Date(2031, 5, 17, 18, 30, 45, 0, time.UTC),
			schedule: "30 18 16 5 *", at: time.Date(2031, 5, 16, 18, 30, 0, 0, time.UTC)},
		{name: "start given at +03:00 is scheduled in UTC", starts: time.Date(2031, 3, 30, 2, 30, 0, 0, msk),
			schedule: "30 23 28 3 *", at: time.Date(2031, 3, 28, 23, 30, 0, 0, time.UTC)},
		{name: "90m lead across the new year", starts: time.Date(2031, 1, 1, 0, 10, 0, 0, time.UTC), lead: &metav1.Duration{Duration: 90 * time.Minute},
			schedule: "40 22 31 12 *", at: time.Date(2030, 12, 31, 22, 40, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evl := newEventLifecycle(testNamespace, "Go meetup", tc.starts, tc.starts.Add(2*time.Hour))
			evl.Spec.ReminderLead = tc.lead
			create(t, evl)

			cj := waitCronJob(t, evl, "CronJob", hasSchedule(tc.schedule))
			if tz := ptr.Deref(cj.Spec.TimeZone, ""); tz != "Etc/UTC" {
				t.Errorf("timeZone = %q, want Etc/UTC", tz)
			}
			if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("concurrencyPolicy = %s", cj.Spec.ConcurrencyPolicy)
			}
			wantDeadline := int64(tc.starts.Sub(tc.at).Seconds())
			if got := ptr.Deref(cj.Spec.StartingDeadlineSeconds, 0); got != wantDeadline {
				t.Errorf("startingDeadlineSeconds = %d, want %d (until the start)", got, wantDeadline)
			}
			checkOwnedBy(t, cj.OwnerReferences, evl)
			checkReminderPod(t, cj.Spec.JobTemplate.Spec, evl)
			if cj.Labels[LabelEventID] != evl.Spec.EventID || cj.Labels[LabelManagedBy] != ManagedByValue {
				t.Errorf("labels = %v", cj.Labels)
			}

			got := waitFor(t, evl, "status", func(e *sborv1.EventLifecycle) error {
				if e.Status.ReminderScheduledFor == nil || !e.Status.ReminderScheduledFor.Equal(&metav1.Time{Time: tc.at}) {
					return fmt.Errorf("reminderScheduledFor = %v, want %s", e.Status.ReminderScheduledFor, tc.at)
				}
				return nil
			})
			if got.Status.Phase != sborv1.PhasePublished || got.Status.ReminderCronJob != cj.Name {
				t.Errorf("status = %+v", got.Status)
			}
			c := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReminderScheduled)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonCronJobScheduled ||
				!strings.Contains(c.Message, tc.at.Format(time.RFC3339)) || !strings.Contains(c.Message, tc.schedule) {
				t.Errorf("ReminderScheduled = %+v", c)
			}
			ev := waitForEvent(t, evl.Namespace, evl.Name, "CronJobCreated")
			if ev.Related == nil || ev.Related.Name != cj.Name || ev.ReportingController != "sbor.dev/operator" || ev.Action != "Create" {
				t.Errorf("CronJobCreated event = %+v", ev)
			}
		})
	}
}

// checkOwnedBy: the EventLifecycle is the controller owner, so deleting it removes the child.
func checkOwnedBy(t *testing.T, refs []metav1.OwnerReference, evl *sborv1.EventLifecycle) {
	t.Helper()
	if len(refs) != 1 {
		t.Fatalf("owner references = %+v", refs)
	}
	r := refs[0]
	if r.APIVersion != "sbor.dev/v1alpha1" || r.Kind != "EventLifecycle" || r.Name != evl.Name ||
		!ptr.Deref(r.Controller, false) || !ptr.Deref(r.BlockOwnerDeletion, false) {
		t.Fatalf("owner reference = %+v", r)
	}
	if cur := getEVL(t, evl); r.UID != cur.UID {
		t.Fatalf("owner UID %s, resource UID %s", r.UID, cur.UID)
	}
}

// checkReminderPod: `sbor remind --event <id>` against the event service, as a restricted pod.
func checkReminderPod(t *testing.T, spec batchv1.JobSpec, evl *sborv1.EventLifecycle) {
	t.Helper()
	pod := spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %+v", pod.Containers)
	}
	c := pod.Containers[0]
	if c.Image != testImage || !slices.Equal(c.Command, []string{"/sbor"}) || !slices.Equal(c.Args, []string{"remind", "--event", evl.Spec.EventID}) {
		t.Errorf("container runs %s %v %v", c.Image, c.Command, c.Args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["SBOR_EVENT_URL"] != testEventURL || env["SBOR_REMIND_ATTEMPTS"] != "3" {
		t.Errorf("env = %v", env)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever || ptr.Deref(spec.BackoffLimit, 0) != 6 {
		t.Errorf("restartPolicy %s backoffLimit %v", pod.RestartPolicy, spec.BackoffLimit)
	}
	if pod.ServiceAccountName != "sbor-reminder" || ptr.Deref(pod.AutomountServiceAccountToken, true) {
		t.Errorf("service account %q automount %v", pod.ServiceAccountName, pod.AutomountServiceAccountToken)
	}
	if spec.Template.Labels["sbor.dev/reminder"] != "true" || spec.Template.Labels[LabelComponent] != ComponentReminder {
		t.Errorf("pod labels = %v", spec.Template.Labels)
	}
	sc := c.SecurityContext
	if sc == nil || ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		pod.SecurityContext == nil || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) ||
		pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("not a restricted pod: pod %+v container %+v", pod.SecurityContext, sc)
	}
}

func TestCronJobMovesWhenTheStartChanges(t *testing.T) {
	starts := time.Date(2031, 6, 1, 19, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "Concert", starts, starts.Add(3*time.Hour))
	create(t, evl)
	first := waitCronJob(t, evl, "CronJob", hasSchedule("0 19 31 5 *"))

	moved := time.Date(2031, 7, 15, 9, 45, 0, 0, time.UTC)
	updateSpec(t, evl, func(s *sborv1.EventLifecycleSpec) {
		s.StartsAt, s.EndsAt, s.Version = metav1.NewTime(moved), metav1.NewTime(moved.Add(time.Hour)), 2
	})
	cj := waitCronJob(t, evl, "rescheduled CronJob", hasSchedule("45 9 14 7 *"))
	if cj.UID != first.UID {
		t.Errorf("the CronJob was replaced instead of updated")
	}
	waitFor(t, evl, "status follows", func(e *sborv1.EventLifecycle) error {
		want := time.Date(2031, 7, 14, 9, 45, 0, 0, time.UTC)
		if e.Status.ReminderScheduledFor == nil || !e.Status.ReminderScheduledFor.Time.Equal(want) {
			return fmt.Errorf("reminderScheduledFor = %v", e.Status.ReminderScheduledFor)
		}
		if e.Status.ObservedGeneration != e.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", e.Status.ObservedGeneration, e.Generation)
		}
		return nil
	})
	ev := waitForEvent(t, evl.Namespace, evl.Name, "CronJobRescheduled")
	if !strings.Contains(ev.Note, `"45 9 14 7 *"`) || !strings.Contains(ev.Note, `was "0 19 31 5 *"`) {
		t.Errorf("CronJobRescheduled note = %q", ev.Note)
	}

	// A lead time set on the resource moves it too.
	updateSpec(t, evl, func(s *sborv1.EventLifecycleSpec) { s.ReminderLead = &metav1.Duration{Duration: 2 * time.Hour} })
	waitCronJob(t, evl, "CronJob at the new lead", hasSchedule("45 7 15 7 *"))
}

func TestCancelRemovesTheCronJob(t *testing.T) {
	starts := time.Date(2031, 9, 10, 12, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "Cancelled later", starts, starts.Add(time.Hour))
	create(t, evl)
	waitCronJob(t, evl, "CronJob", hasSchedule("0 12 9 9 *"))

	updateSpec(t, evl, func(s *sborv1.EventLifecycleSpec) { s.Cancelled, s.Version = true, 2 })
	waitNoCronJob(t, evl)
	got := waitFor(t, evl, "Cancelled", func(e *sborv1.EventLifecycle) error {
		if e.Status.Phase != sborv1.PhaseCancelled {
			return fmt.Errorf("phase %s", e.Status.Phase)
		}
		return nil
	})
	ready := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReady)
	sched := meta.FindStatusCondition(got.Status.Conditions, sborv1.ConditionReminderScheduled)
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason != "Cancelled" {
		t.Errorf("Ready = %+v", ready)
	}
	if sched == nil || sched.Status != metav1.ConditionFalse || sched.Reason != ReasonEventCancelled {
		t.Errorf("ReminderScheduled = %+v", sched)
	}
	if got.Status.ReminderCronJob != "" {
		t.Errorf("status still names CronJob %q", got.Status.ReminderCronJob)
	}
	waitForEvent(t, evl.Namespace, evl.Name, "CronJobDeleted")
	waitForEvent(t, evl.Namespace, evl.Name, "PhaseCancelled")
}

func TestReminderSentRemovesTheCronJob(t *testing.T) {
	starts := time.Date(2031, 10, 1, 8, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "Reminded", starts, starts.Add(time.Hour))
	create(t, evl)
	waitCronJob(t, evl, "CronJob", hasSchedule("0 8 30 9 *"))

	// What the Kafka consumer does on event.reminder.
	sentAt := metav1.NewTime(time.Date(2031, 9, 30, 8, 0, 5, 0, time.UTC))
	eventually(t, 10*time.Second, "record reminderSentAt", func() error {
		cur := getEVL(t, evl)
		cur.Status.ReminderSentAt = &sentAt
		return k8sClient.Status().Update(context.Background(), cur)
	})
	waitNoCronJob(t, evl)
	got := waitFor(t, evl, "ReminderSent", func(e *sborv1.EventLifecycle) error {
		c := meta.FindStatusCondition(e.Status.Conditions, sborv1.ConditionReminderScheduled)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonReminderSent {
			return fmt.Errorf("ReminderScheduled = %+v", c)
		}
		return nil
	})
	if got.Status.Phase != sborv1.PhasePublished || got.Status.ReminderSentAt == nil || !got.Status.ReminderSentAt.Equal(&sentAt) {
		t.Errorf("status = %+v", got.Status)
	}
}

func TestEventOverIsFinishedWithoutCronJob(t *testing.T) {
	starts := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	evl := newEventLifecycle(testNamespace, "Yesterday's news", starts, starts.Add(time.Hour))
	create(t, evl)
	waitFor(t, evl, "Finished", func(e *sborv1.EventLifecycle) error {
		if e.Status.Phase != sborv1.PhaseFinished {
			return fmt.Errorf("phase %q", e.Status.Phase)
		}
		return nil
	})
	var cj batchv1.CronJob
	if err := isNotFound(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: evl.Namespace, Name: cronJobName(evl)}, &cj)); err != nil {
		t.Fatalf("CronJob for a finished event: %v", err)
	}
}

func TestPublishedInsideTheLeadTimeSendsAtOnce(t *testing.T) {
	starts := time.Now().Add(2 * time.Hour).Truncate(time.Second) // lead is 24h
	evl := newEventLifecycle(testNamespace, "Last minute", starts, starts.Add(time.Hour))
	create(t, evl)

	var job batchv1.Job
	eventually(t, 15*time.Second, "immediate Job", func() error {
		return k8sClient.Get(context.Background(), client.ObjectKey{Namespace: evl.Namespace, Name: immediateJobName(evl)}, &job)
	})
	checkOwnedBy(t, job.OwnerReferences, evl)
	checkReminderPod(t, job.Spec, evl)
	var cj batchv1.CronJob
	if err := isNotFound(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: evl.Namespace, Name: cronJobName(evl)}, &cj)); err != nil {
		t.Errorf("a CronJob next to the immediate Job: %v", err)
	}
	got := waitFor(t, evl, "ReminderJobCreated", func(e *sborv1.EventLifecycle) error {
		c := meta.FindStatusCondition(e.Status.Conditions, sborv1.ConditionReminderScheduled)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonJobCreated {
			return fmt.Errorf("ReminderScheduled = %+v", c)
		}
		return nil
	})
	if got.Status.ReminderScheduledFor == nil || !got.Status.ReminderScheduledFor.Equal(&job.CreationTimestamp) {
		t.Errorf("reminderScheduledFor = %v, Job created %v", got.Status.ReminderScheduledFor, job.CreationTimestamp)
	}
	waitForEvent(t, evl.Namespace, evl.Name, "ReminderJobCreated")

	// Reconciling again (a title change) never makes a second Job.
	updateSpec(t, evl, func(s *sborv1.EventLifecycleSpec) { s.Title, s.Version = "Last minute!", 2 })
	waitFor(t, evl, "observed", func(e *sborv1.EventLifecycle) error {
		if e.Status.ObservedGeneration != e.Generation {
			return fmt.Errorf("observedGeneration %d of %d", e.Status.ObservedGeneration, e.Generation)
		}
		return nil
	})
	var jobs batchv1.JobList
	if err := k8sClient.List(context.Background(), &jobs, client.InNamespace(evl.Namespace), client.MatchingLabels{LabelEventID: evl.Spec.EventID}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d Jobs for one reminder", len(jobs.Items))
	}
}

func TestDeletedCronJobIsRecreated(t *testing.T) {
	starts := time.Date(2031, 11, 20, 17, 15, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "Resilient", starts, starts.Add(time.Hour))
	create(t, evl)
	first := waitCronJob(t, evl, "CronJob", hasSchedule("15 17 19 11 *"))
	waitFor(t, evl, "status names the CronJob", func(e *sborv1.EventLifecycle) error {
		if e.Status.ReminderCronJob != first.Name {
			return fmt.Errorf("reminderCronJob %q", e.Status.ReminderCronJob)
		}
		return nil
	})

	if err := k8sClient.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	again := waitCronJob(t, evl, "recreated CronJob", func(cj *batchv1.CronJob) error {
		if cj.UID == first.UID {
			return fmt.Errorf("still the old one")
		}
		return hasSchedule("15 17 19 11 *")(cj)
	})
	checkOwnedBy(t, again.OwnerReferences, evl)
	waitForEvent(t, evl.Namespace, evl.Name, "CronJobRecreated")
}

// TestManualJobFromCronJob: `kubectl create job --from=cronjob/<name>` sends a reminder by hand;
// run with the kubectl that hack/envtest/assets.sh builds.
func TestManualJobFromCronJob(t *testing.T) {
	kubectl := filepath.Join(testEnv.AssetsDir, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl in %s", testEnv.AssetsDir)
	}
	starts := time.Date(2031, 12, 5, 10, 0, 0, 0, time.UTC)
	evl := newEventLifecycle(testNamespace, "By hand", starts, starts.Add(time.Hour))
	create(t, evl)
	cj := waitCronJob(t, evl, "CronJob", hasSchedule("0 10 4 12 *"))

	out, err := runKubectl(t, "-n", testNamespace, "create", "job", "--from=cronjob/"+cj.Name, "remind-by-hand")
	if err != nil {
		t.Fatalf("kubectl create job: %v\n%s", err, out)
	}
	var job batchv1.Job
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: "remind-by-hand"}, &job); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), &job) })
	checkReminderPod(t, job.Spec, evl)
	if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].Kind != "CronJob" || job.OwnerReferences[0].Name != cj.Name {
		t.Errorf("owner = %+v", job.OwnerReferences)
	}
	// The operator leaves a Job it did not make alone.
	time.Sleep(300 * time.Millisecond)
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(&job), &job); err != nil || !job.DeletionTimestamp.IsZero() {
		t.Errorf("manual Job disappeared: %v", err)
	}
}

// runKubectl runs the built kubectl against the envtest server.
func runKubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	user, err := testEnv.AddUser(envtestAdmin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(testEnv.AssetsDir, "kubectl"), append([]string{"--kubeconfig", path}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
