package controller

import (
	"fmt"
	"time"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// reminderAction is what the reminder of an event needs right now.
type reminderAction int

const (
	// reminderNone: no reminder is pending; the CronJob goes away.
	reminderNone reminderAction = iota
	// reminderCronJob: the reminder is in the future; a CronJob fires it at reminderAt.
	reminderCronJob
	// reminderNow: the reminder is due (published inside the lead time); a Job sends it at once,
	// unless the CronJob scheduled for exactly this minute has already fired.
	reminderNow
)

// Reasons of the ReminderScheduled condition (and of the Kubernetes Events that go with them).
const (
	ReasonCronJobScheduled = "CronJobScheduled"
	ReasonCronJobFired     = "CronJobFired"
	ReasonJobCreated       = "ReminderJobCreated"
	ReasonReminderSent     = "ReminderSent"
	ReasonEventCancelled   = "EventCancelled"
	ReasonEventStarted     = "EventStarted"
	ReasonEventFinished    = "EventFinished"
)

// reminderPlan is the decision for one event at one instant; it depends on nothing but the
// resource, the clock and the lead time, so it is tested as a table.
type reminderPlan struct {
	phase  sborv1.Phase
	action reminderAction
	// reminderAt is the minute the reminder fires (UTC), for reminderCronJob and reminderNow.
	reminderAt time.Time
	// reason and message explain a reminderNone (the ReminderScheduled condition is False).
	reason, message string
	// wakeAt is the next instant the plan changes by itself (zero: never), for RequeueAfter.
	wakeAt time.Time
}

// reminderTime is the minute the reminder fires: startsAt − lead, in UTC, truncated to the
// minute because a cron schedule has minute resolution (it fires at most 59 s early).
func reminderTime(startsAt time.Time, lead time.Duration) time.Time {
	return startsAt.Add(-lead).UTC().Truncate(time.Minute)
}

// planReminder decides the phase and the reminder of evl at now.
func planReminder(evl *sborv1.EventLifecycle, now time.Time, lead time.Duration) reminderPlan {
	starts, ends := evl.Spec.StartsAt.Time, evl.Spec.EndsAt.Time
	switch {
	case evl.Spec.Cancelled:
		return reminderPlan{phase: sborv1.PhaseCancelled, reason: ReasonEventCancelled,
			message: "the event was cancelled; no reminder is sent"}
	case !now.Before(ends):
		return reminderPlan{phase: sborv1.PhaseFinished, reason: ReasonEventFinished,
			message: fmt.Sprintf("the event ended at %s", ends.UTC().Format(time.RFC3339))}
	case evl.Status.ReminderSentAt != nil:
		return reminderPlan{phase: sborv1.PhasePublished, reason: ReasonReminderSent,
			message: fmt.Sprintf("the reminder was sent at %s", evl.Status.ReminderSentAt.UTC().Format(time.RFC3339)),
			wakeAt:  ends}
	case !now.Before(starts):
		return reminderPlan{phase: sborv1.PhasePublished, reason: ReasonEventStarted,
			message: fmt.Sprintf("the event started at %s before a reminder was sent; none is sent now", starts.UTC().Format(time.RFC3339)),
			wakeAt:  ends}
	}
	at := reminderTime(starts, lead)
	if at.After(now) {
		return reminderPlan{phase: sborv1.PhasePublished, action: reminderCronJob, reminderAt: at, wakeAt: at}
	}
	return reminderPlan{phase: sborv1.PhasePublished, action: reminderNow, reminderAt: at, wakeAt: starts}
}

// requeueAfter turns the plan's wake-up time into a RequeueAfter; a second of slack makes sure
// the clock has passed the instant when the reconcile runs.
func (p reminderPlan) requeueAfter(now time.Time) time.Duration {
	if p.wakeAt.IsZero() {
		return 0
	}
	d := p.wakeAt.Sub(now) + time.Second
	return max(d, time.Second)
}
