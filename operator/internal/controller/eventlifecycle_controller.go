// Package controller holds the operator's reconcilers: EventLifecycle (the reminder CronJob,
// the phase and the conditions of one event) and the platform's Kafka topics.
//
// The layout follows CloudNativePG: Reconcile only fetches the resource, handles its deletion
// and delegates; each concern lives in its own file with its own tests (the plan in
// eventlifecycle_plan.go, the CronJob and Job in eventlifecycle_cronjob.go, the status in
// eventlifecycle_status.go, topics in topics.go).
package controller

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// DefaultReminderLead is how long before the start the reminder goes out when neither the
// resource nor the operator's configuration says otherwise.
const DefaultReminderLead = 24 * time.Hour

// conflictRetry is how soon a reconcile that lost an update race runs again.
const conflictRetry = 200 * time.Millisecond

// EventLifecycleReconciler keeps, for each EventLifecycle, the reminder CronJob (or the
// immediate Job), the phase, the conditions and the Kubernetes Events that record each step.
type EventLifecycleReconciler struct {
	client.Client
	// APIReader reads around the cache where a just-created object may not be in it yet.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Reminder  ReminderJob
	// DefaultLead applies to resources without spec.reminderLead (0: DefaultReminderLead).
	DefaultLead time.Duration
	// Topics, if set, is copied into the TopicsReady condition and re-triggers every event when
	// it changes.
	Topics *TopicState
	// Now is the clock (nil: time.Now); the plan depends on it.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=sbor.dev,resources=eventlifecycles,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=sbor.dev,resources=eventlifecycles/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sbor.dev,resources=eventlifecycles/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile fetches the EventLifecycle, leaves a deleted one to the garbage collector (the
// CronJob and Jobs carry owner references) and delegates the rest.
func (r *EventLifecycleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var evl sborv1.EventLifecycle
	if err := r.Get(ctx, req.NamespacedName, &evl); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !evl.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	return r.reconcileLifecycle(ctx, &evl)
}

// reconcileLifecycle plans the event at this instant, applies the plan to the reminder, records
// the status, and comes back when the plan changes by itself (the reminder time, the start,
// the end).
func (r *EventLifecycleReconciler) reconcileLifecycle(ctx context.Context, evl *sborv1.EventLifecycle) (ctrl.Result, error) {
	orig := evl.DeepCopy()
	now := r.now()
	plan := planReminder(evl, now, r.lead(evl))

	outcome, err := r.reconcileReminder(ctx, evl, plan)
	if err != nil {
		setPhase(evl, plan.phase, metav1.ConditionFalse, ReasonReconcileFailed, err.Error())
		r.Recorder.Eventf(evl, nil, corev1.EventTypeWarning, ReasonReconcileFailed, "Reconcile", "%s", err.Error())
	} else {
		setReminderStatus(evl, outcome)
		setPhase(evl, plan.phase, metav1.ConditionTrue, string(plan.phase), readyMessage(plan.phase, outcome))
	}
	if r.Topics != nil {
		setTopicsStatus(evl, r.Topics.Get())
	}
	evl.Status.ObservedGeneration = evl.Generation

	if orig.Status.Phase != evl.Status.Phase {
		r.Recorder.Eventf(evl, nil, corev1.EventTypeNormal, "Phase"+string(evl.Status.Phase), "Reconcile",
			"phase %s (was %q)", evl.Status.Phase, orig.Status.Phase)
	}
	if perr := r.patchStatus(ctx, evl, orig); perr != nil && err == nil {
		if apierrors.IsNotFound(perr) {
			return ctrl.Result{}, nil // deleted meanwhile; the garbage collector has the rest
		}
		if apierrors.IsConflict(perr) {
			// The resource changed under this reconcile (the cache lagged behind a write, or
			// the Kafka consumer recorded the reminder): plan again on the fresh object.
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		err = perr
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: plan.requeueAfter(now)}, nil
}

func (r *EventLifecycleReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// lead is the resource's reminder lead time, or the operator's default.
func (r *EventLifecycleReconciler) lead(evl *sborv1.EventLifecycle) time.Duration {
	if evl.Spec.ReminderLead != nil && evl.Spec.ReminderLead.Duration > 0 {
		return evl.Spec.ReminderLead.Duration
	}
	if r.DefaultLead > 0 {
		return r.DefaultLead
	}
	return DefaultReminderLead
}

// SetupWithManager registers the controller: EventLifecycles, the CronJobs and Jobs they own
// (a deleted CronJob is recreated), and the topics' readiness.
func (r *EventLifecycleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&sborv1.EventLifecycle{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, // spec changes
			statusFieldChanged{},                   // reminderSentAt from the Kafka consumer
		))).
		Owns(&batchv1.CronJob{}).
		Owns(&batchv1.Job{}).
		Named("eventlifecycle")
	if r.Topics != nil {
		b = b.WatchesRawSource(source.Channel(r.Topics.changes, handler.EnqueueRequestsFromMapFunc(r.everyEvent)))
	}
	return b.Complete(r)
}

// everyEvent lists every EventLifecycle, for a change that concerns them all.
func (r *EventLifecycleReconciler) everyEvent(ctx context.Context, _ client.Object) []reconcile.Request {
	var list sborv1.EventLifecycleList
	if err := r.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing EventLifecycles for a topic readiness change")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, evl := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&evl)})
	}
	return reqs
}

// statusFieldChanged lets through the status changes the reconciler did not make itself:
// reminderSentAt, which the Kafka consumer records. The reconciler's own status writes would
// otherwise wake it up once more for nothing.
type statusFieldChanged struct{ predicate.Funcs }

func (statusFieldChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*sborv1.EventLifecycle)
	n, ok2 := e.ObjectNew.(*sborv1.EventLifecycle)
	if !ok1 || !ok2 {
		return false
	}
	return !o.Status.ReminderSentAt.Equal(n.Status.ReminderSentAt)
}
