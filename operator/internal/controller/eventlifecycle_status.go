package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// ReasonReconcileFailed is the Ready reason when a step of the reconcile failed; the message
// says which.
const ReasonReconcileFailed = "ReconcileFailed"

// setPhase is the one place that sets the phase, and it sets the Ready condition with it, so
// the two never disagree: ready False means the phase is right but its consequences (the
// reminder CronJob, its removal) are not in place yet.
func setPhase(evl *sborv1.EventLifecycle, phase sborv1.Phase, ready metav1.ConditionStatus, reason, message string) {
	evl.Status.Phase = phase
	meta.SetStatusCondition(&evl.Status.Conditions, metav1.Condition{
		Type: sborv1.ConditionReady, Status: ready, Reason: reason, Message: message,
		ObservedGeneration: evl.Generation,
	})
}

// readyMessage says what a reconciled event in phase looks like.
func readyMessage(phase sborv1.Phase, outcome reminderOutcome) string {
	switch phase {
	case sborv1.PhaseCancelled:
		return "cancelled: no reminder is pending"
	case sborv1.PhaseFinished:
		return "the event is over: no reminder is pending"
	}
	return "published: " + outcome.message
}

// setReminderStatus records the outcome of the reminder step: when it fires, which CronJob
// fires it, and the ReminderScheduled condition.
func setReminderStatus(evl *sborv1.EventLifecycle, out reminderOutcome) {
	evl.Status.ReminderScheduledFor = out.scheduledFor
	evl.Status.ReminderCronJob = out.cronJob
	meta.SetStatusCondition(&evl.Status.Conditions, metav1.Condition{
		Type: sborv1.ConditionReminderScheduled, Status: out.scheduled, Reason: out.reason, Message: out.message,
		ObservedGeneration: evl.Generation,
	})
}

// setTopicsStatus copies the platform's topic readiness into the TopicsReady condition.
func setTopicsStatus(evl *sborv1.EventLifecycle, st TopicStatus) {
	if st.Status == "" {
		st = TopicStatus{Status: metav1.ConditionUnknown, Reason: "NotChecked", Message: "the topics have not been checked yet"}
	}
	meta.SetStatusCondition(&evl.Status.Conditions, metav1.Condition{
		Type: sborv1.ConditionTopicsReady, Status: st.Status, Reason: st.Reason, Message: st.Message,
		ObservedGeneration: evl.Generation,
	})
}

// patchStatus writes the status if it changed. The optimistic lock makes a concurrent writer
// (the Kafka consumer recording reminderSentAt) win: this reconcile fails with a conflict and
// runs again on the fresh object.
func (r *EventLifecycleReconciler) patchStatus(ctx context.Context, evl, orig *sborv1.EventLifecycle) error {
	if equality.Semantic.DeepEqual(evl.Status, orig.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, evl, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch status: %w", err)
	}
	return nil
}
