package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// ReminderTimeZone is the CronJob's time zone: schedules are computed in UTC and say so, so the
// controller manager's own zone never shifts a reminder.
const ReminderTimeZone = "Etc/UTC"

// Labels on everything the operator creates for an event.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	ManagedByValue      = "sbor-operator"
	LabelName           = "app.kubernetes.io/name"
	LabelComponent      = "app.kubernetes.io/component"
	ComponentReminder   = "reminder"
	LabelEventID        = "sbor.dev/event-id"
	LabelEventLifecycle = "sbor.dev/eventlifecycle"
)

// ReminderJob describes the Job that sends a reminder: the sbor image running
// `<Command> remind --event <id>` against the event service.
type ReminderJob struct {
	Image           string
	ImagePullPolicy corev1.PullPolicy
	// Command is the sbor binary inside the image (empty: the image's entrypoint); the
	// arguments `remind --event <id>` follow.
	Command []string
	// EventServiceURL is passed as SBOR_EVENT_URL.
	EventServiceURL string
	// Attempts is passed as SBOR_REMIND_ATTEMPTS (0: the command's default).
	Attempts int
	// ServiceAccountName runs the Job's pod (empty: the namespace's default); the pod never
	// mounts its token, because `sbor remind` does not talk to Kubernetes.
	ServiceAccountName string
	// PodLabels are added to the pod, e.g. for the NetworkPolicy that lets it reach the event
	// service.
	PodLabels map[string]string
	// BackoffLimit is how often Kubernetes retries a failed reminder (default 6).
	BackoffLimit int32
}

// cronJobName is the name of the event's reminder CronJob: "remind-<resource name>", shortened
// with a hash when needed, because a CronJob's name is at most 52 characters (its Jobs append
// a suffix and must fit in 63).
func cronJobName(evl *sborv1.EventLifecycle) string {
	const maxLen = 52
	name := "remind-" + evl.Name
	if len(name) <= maxLen {
		return name
	}
	sum := sha256.Sum256([]byte(evl.Name))
	return strings.TrimRight(name[:maxLen-9], "-.") + "-" + hex.EncodeToString(sum[:4])
}

// immediateJobName is the Job that sends the reminder at once; one name per event, so it is
// created once however often the event is reconciled.
func immediateJobName(evl *sborv1.EventLifecycle) string {
	return cronJobName(evl) + "-now"
}

// cronSchedule fires once a year at the given minute, day and month; the CronJob is removed
// after it fired, so it fires once. at must be in UTC (the CronJob's time zone).
func cronSchedule(at time.Time) string {
	at = at.UTC()
	return fmt.Sprintf("%d %d %d %d *", at.Minute(), at.Hour(), at.Day(), int(at.Month()))
}

// reminderOutcome is what applying the plan did, for the status.
type reminderOutcome struct {
	scheduled    metav1.ConditionStatus
	reason       string
	message      string
	scheduledFor *metav1.Time
	cronJob      string
}

// reconcileReminder makes the cluster match the plan: the CronJob, the immediate Job, or
// neither.
func (r *EventLifecycleReconciler) reconcileReminder(ctx context.Context, evl *sborv1.EventLifecycle, plan reminderPlan) (reminderOutcome, error) {
	switch plan.action {
	case reminderCronJob:
		if err := r.ensureCronJob(ctx, evl, plan.reminderAt); err != nil {
			return reminderOutcome{}, err
		}
		return reminderOutcome{
			scheduled: metav1.ConditionTrue, reason: ReasonCronJobScheduled,
			message:      fmt.Sprintf("CronJob %s sends the reminder at %s (schedule %q, %s)", cronJobName(evl), plan.reminderAt.Format(time.RFC3339), cronSchedule(plan.reminderAt), ReminderTimeZone),
			scheduledFor: ptr.To(metav1.NewTime(plan.reminderAt)),
			cronJob:      cronJobName(evl),
		}, nil

	case reminderNow:
		// A CronJob scheduled for exactly this minute has fired (or is firing): its Job sends the
		// reminder, and a second one must not race it.
		fired, err := r.cronJobScheduledFor(ctx, evl, plan.reminderAt)
		if err != nil {
			return reminderOutcome{}, err
		}
		if fired {
			return reminderOutcome{
				scheduled: metav1.ConditionTrue, reason: ReasonCronJobFired,
				message:      fmt.Sprintf("CronJob %s fired at %s; waiting for the event service to announce the reminder", cronJobName(evl), plan.reminderAt.Format(time.RFC3339)),
				scheduledFor: ptr.To(metav1.NewTime(plan.reminderAt)),
				cronJob:      cronJobName(evl),
			}, nil
		}
		if err := r.deleteCronJob(ctx, evl, "the reminder is due now"); err != nil {
			return reminderOutcome{}, err
		}
		job, err := r.ensureImmediateJob(ctx, evl)
		if err != nil {
			return reminderOutcome{}, err
		}
		return reminderOutcome{
			scheduled: metav1.ConditionTrue, reason: ReasonJobCreated,
			message:      fmt.Sprintf("published inside the reminder lead time: Job %s sends the reminder now", job.Name),
			scheduledFor: ptr.To(job.CreationTimestamp),
		}, nil

	case reminderNone:
		if err := r.deleteCronJob(ctx, evl, plan.message); err != nil {
			return reminderOutcome{}, err
		}
		// A reminder still running for an event that was cancelled or is over is stopped; after
		// ReminderSent or EventStarted the finished Job stays for its logs until its TTL.
		if plan.reason == ReasonEventCancelled || plan.reason == ReasonEventFinished {
			if err := r.deleteImmediateJob(ctx, evl, plan.message); err != nil {
				return reminderOutcome{}, err
			}
		}
		return reminderOutcome{
			scheduled: metav1.ConditionFalse, reason: plan.reason, message: plan.message,
			scheduledFor: evl.Status.ReminderScheduledFor,
		}, nil
	}
	return reminderOutcome{}, fmt.Errorf("unknown reminder action %d", plan.action)
}

// ensureCronJob creates the reminder CronJob or brings it back to the desired schedule and
// template; a CronJob that was deleted behind the operator's back is recreated.
func (r *EventLifecycleReconciler) ensureCronJob(ctx context.Context, evl *sborv1.EventLifecycle, at time.Time) error {
	desired := r.desiredCronJob(evl, at)
	if err := controllerutil.SetControllerReference(evl, desired, r.Scheme); err != nil {
		return err
	}
	var existing batchv1.CronJob
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), &existing)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Create(ctx, desired); err != nil {
			return fmt.Errorf("create CronJob %s: %w", desired.Name, err)
		}
		reason, note := "CronJobCreated", "created CronJob %s: the reminder fires at %s (schedule %q, %s)"
		if evl.Status.ReminderCronJob == desired.Name {
			reason, note = "CronJobRecreated", "CronJob %s was deleted; recreated it: the reminder fires at %s (schedule %q, %s)"
		}
		r.Recorder.Eventf(evl, desired, corev1.EventTypeNormal, reason, "Create", note,
			desired.Name, at.Format(time.RFC3339), desired.Spec.Schedule, ReminderTimeZone)
		return nil
	case err != nil:
		return fmt.Errorf("get CronJob %s: %w", desired.Name, err)
	}
	if !metav1.IsControlledBy(&existing, evl) {
		return fmt.Errorf("CronJob %s exists and is not owned by EventLifecycle %s", existing.Name, evl.Name)
	}
	if equality.Semantic.DeepDerivative(desired.Spec, existing.Spec) &&
		equality.Semantic.DeepDerivative(desired.Labels, existing.Labels) {
		return nil
	}
	oldSchedule := existing.Spec.Schedule
	if existing.Labels == nil {
		existing.Labels = map[string]string{}
	}
	maps.Copy(existing.Labels, desired.Labels)
	existing.Spec = desired.Spec
	if err := r.Update(ctx, &existing); err != nil {
		return fmt.Errorf("update CronJob %s: %w", existing.Name, err)
	}
	if oldSchedule != desired.Spec.Schedule {
		r.Recorder.Eventf(evl, &existing, corev1.EventTypeNormal, "CronJobRescheduled", "Update",
			"moved the reminder of CronJob %s to %s (schedule %q, was %q)", existing.Name, at.Format(time.RFC3339), desired.Spec.Schedule, oldSchedule)
	} else {
		r.Recorder.Eventf(evl, &existing, corev1.EventTypeNormal, "CronJobUpdated", "Update",
			"updated the Job template of CronJob %s", existing.Name)
	}
	return nil
}

// cronJobScheduledFor reports whether the event's CronJob exists with the schedule of at.
func (r *EventLifecycleReconciler) cronJobScheduledFor(ctx context.Context, evl *sborv1.EventLifecycle, at time.Time) (bool, error) {
	var cj batchv1.CronJob
	err := r.Get(ctx, client.ObjectKey{Namespace: evl.Namespace, Name: cronJobName(evl)}, &cj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get CronJob %s: %w", cronJobName(evl), err)
	}
	return metav1.IsControlledBy(&cj, evl) && cj.Spec.Schedule == cronSchedule(at) &&
		ptr.Deref(cj.Spec.TimeZone, "") == ReminderTimeZone, nil
}

// deleteCronJob removes the event's CronJob (and, through its owner references, its Jobs).
func (r *EventLifecycleReconciler) deleteCronJob(ctx context.Context, evl *sborv1.EventLifecycle, why string) error {
	var cj batchv1.CronJob
	err := r.Get(ctx, client.ObjectKey{Namespace: evl.Namespace, Name: cronJobName(evl)}, &cj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get CronJob %s: %w", cronJobName(evl), err)
	}
	if !metav1.IsControlledBy(&cj, evl) || !cj.DeletionTimestamp.IsZero() {
		return nil
	}
	err = r.Delete(ctx, &cj, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &cj.UID})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete CronJob %s: %w", cj.Name, err)
	}
	r.Recorder.Eventf(evl, &cj, corev1.EventTypeNormal, "CronJobDeleted", "Delete", "deleted CronJob %s: %s", cj.Name, why)
	return nil
}

// ensureImmediateJob creates the Job that sends the reminder now, once.
func (r *EventLifecycleReconciler) ensureImmediateJob(ctx context.Context, evl *sborv1.EventLifecycle) (*batchv1.Job, error) {
	var job batchv1.Job
	key := client.ObjectKey{Namespace: evl.Namespace, Name: immediateJobName(evl)}
	err := r.Get(ctx, key, &job)
	if err == nil {
		return &job, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get Job %s: %w", key.Name, err)
	}
	job = batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: r.labels(evl)},
		Spec:       r.jobSpec(evl),
	}
	if err := controllerutil.SetControllerReference(evl, &job, r.Scheme); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, &job); err != nil {
		if apierrors.IsAlreadyExists(err) { // the cache had not seen it yet
			return &job, r.APIReader.Get(ctx, key, &job)
		}
		return nil, fmt.Errorf("create Job %s: %w", key.Name, err)
	}
	r.Recorder.Eventf(evl, &job, corev1.EventTypeNormal, "ReminderJobCreated", "Create",
		"published inside the reminder lead time: created Job %s to send the reminder now", job.Name)
	return &job, nil
}

// deleteImmediateJob stops and removes the immediate Job, with its pods.
func (r *EventLifecycleReconciler) deleteImmediateJob(ctx context.Context, evl *sborv1.EventLifecycle, why string) error {
	var job batchv1.Job
	err := r.Get(ctx, client.ObjectKey{Namespace: evl.Namespace, Name: immediateJobName(evl)}, &job)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Job %s: %w", immediateJobName(evl), err)
	}
	if !metav1.IsControlledBy(&job, evl) || !job.DeletionTimestamp.IsZero() {
		return nil
	}
	err = r.Delete(ctx, &job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete Job %s: %w", job.Name, err)
	}
	r.Recorder.Eventf(evl, &job, corev1.EventTypeNormal, "ReminderJobDeleted", "Delete", "deleted Job %s: %s", job.Name, why)
	return nil
}

// desiredCronJob is the reminder CronJob of evl firing at at.
func (r *EventLifecycleReconciler) desiredCronJob(evl *sborv1.EventLifecycle, at time.Time) *batchv1.CronJob {
	// If the CronJob controller misses the minute (it was down), it still starts the Job until
	// the event starts; after that a reminder is pointless.
	deadline := max(int64(evl.Spec.StartsAt.Sub(at).Seconds()), 60)
	labels := r.labels(evl)
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: cronJobName(evl), Namespace: evl.Namespace, Labels: labels},
		Spec: batchv1.CronJobSpec{
			Schedule:                   cronSchedule(at),
			TimeZone:                   ptr.To(ReminderTimeZone),
			StartingDeadlineSeconds:    ptr.To(deadline),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			Suspend:                    ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To[int32](1),
			FailedJobsHistoryLimit:     ptr.To[int32](1),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       r.jobSpec(evl),
			},
		},
	}
}

// jobSpec runs `sbor remind --event <id>` once, as a restricted pod; a failure exits non-zero
// and Kubernetes retries it up to BackoffLimit times.
func (r *EventLifecycleReconciler) jobSpec(evl *sborv1.EventLifecycle) batchv1.JobSpec {
	j := r.Reminder
	podLabels := r.labels(evl)
	maps.Copy(podLabels, j.PodLabels)
	env := []corev1.EnvVar{{Name: "SBOR_EVENT_URL", Value: j.EventServiceURL}}
	if j.Attempts > 0 {
		env = append(env, corev1.EnvVar{Name: "SBOR_REMIND_ATTEMPTS", Value: fmt.Sprint(j.Attempts)})
	}
	backoff := j.BackoffLimit
	if backoff == 0 {
		backoff = 6
	}
	pullPolicy := j.ImagePullPolicy
	if pullPolicy == "" {
		pullPolicy = corev1.PullIfNotPresent
	}
	args := []string{"remind", "--event", evl.Spec.EventID}
	return batchv1.JobSpec{
		BackoffLimit:            ptr.To(backoff),
		TTLSecondsAfterFinished: ptr.To[int32](int32((24 * time.Hour).Seconds())),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
			Spec: corev1.PodSpec{
				RestartPolicy:                corev1.RestartPolicyNever,
				ServiceAccountName:           j.ServiceAccountName,
				AutomountServiceAccountToken: ptr.To(false),
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr.To(true),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				Containers: []corev1.Container{{
					Name:            "remind",
					Image:           j.Image,
					ImagePullPolicy: pullPolicy,
					Command:         j.Command,
					Args:            args,
					Env:             env,
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
					},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						ReadOnlyRootFilesystem:   ptr.To(true),
						RunAsNonRoot:             ptr.To(true),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
				}},
			},
		},
	}
}

// labels identify everything made for one event.
func (r *EventLifecycleReconciler) labels(evl *sborv1.EventLifecycle) map[string]string {
	return map[string]string{
		LabelName:           "sbor",
		LabelComponent:      ComponentReminder,
		LabelManagedBy:      ManagedByValue,
		LabelEventID:        evl.Spec.EventID,
		LabelEventLifecycle: labelValue(evl.Name),
	}
}

// labelValue fits a name into a label value (at most 63 characters), with a hash when shortened.
func labelValue(s string) string {
	const maxLen = 63
	if len(s) <= maxLen {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:maxLen-9], "-.") + "-" + hex.EncodeToString(sum[:4])
}
