package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

func TestPlanReminder(t *testing.T) {
	starts := time.Date(2031, 5, 17, 18, 30, 45, 0, time.UTC)
	ends := starts.Add(3 * time.Hour)
	lead := 24 * time.Hour
	reminderAt := time.Date(2031, 5, 16, 18, 30, 0, 0, time.UTC) // minute of starts − 24h
	sent := metav1.NewTime(reminderAt.Add(time.Minute))

	cases := []struct {
		name      string
		now       time.Time
		cancelled bool
		sentAt    *metav1.Time
		want      reminderPlan
	}{
		{name: "far ahead: CronJob at the minute of start − lead", now: starts.Add(-30 * 24 * time.Hour),
			want: reminderPlan{phase: sborv1.PhasePublished, action: reminderCronJob, reminderAt: reminderAt, wakeAt: reminderAt}},
		{name: "one second before the reminder", now: reminderAt.Add(-time.Second),
			want: reminderPlan{phase: sborv1.PhasePublished, action: reminderCronJob, reminderAt: reminderAt, wakeAt: reminderAt}},
		{name: "at the reminder minute: due now", now: reminderAt,
			want: reminderPlan{phase: sborv1.PhasePublished, action: reminderNow, reminderAt: reminderAt, wakeAt: starts}},
		{name: "published inside the lead time: due now", now: starts.Add(-2 * time.Hour),
			want: reminderPlan{phase: sborv1.PhasePublished, action: reminderNow, reminderAt: reminderAt, wakeAt: starts}},
		{name: "reminder sent", now: starts.Add(-2 * time.Hour), sentAt: &sent,
			want: reminderPlan{phase: sborv1.PhasePublished, reason: ReasonReminderSent, wakeAt: ends}},
		{name: "started without a reminder", now: starts.Add(time.Minute),
			want: reminderPlan{phase: sborv1.PhasePublished, reason: ReasonEventStarted, wakeAt: ends}},
		{name: "over", now: ends,
			want: reminderPlan{phase: sborv1.PhaseFinished, reason: ReasonEventFinished}},
		{name: "cancelled wins over everything", now: starts.Add(-30 * 24 * time.Hour), cancelled: true, sentAt: &sent,
			want: reminderPlan{phase: sborv1.PhaseCancelled, reason: ReasonEventCancelled}},
		{name: "cancelled after it was over is still cancelled", now: ends.Add(time.Hour), cancelled: true,
			want: reminderPlan{phase: sborv1.PhaseCancelled, reason: ReasonEventCancelled}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evl := &sborv1.EventLifecycle{
				Spec: sborv1.EventLifecycleSpec{
					StartsAt: metav1.NewTime(starts), EndsAt: metav1.NewTime(ends), Cancelled: tc.cancelled,
				},
				Status: sborv1.EventLifecycleStatus{ReminderSentAt: tc.sentAt},
			}
			got := planReminder(evl, tc.now, lead)
			got.message = "" // prose; checked in the envtest cases
			if got != tc.want {
				t.Fatalf("plan at %s:\n got  %+v\n want %+v", tc.now.Format(time.RFC3339), got, tc.want)
			}
		})
	}
}

func TestReminderTimeIsUTCAndMinuteAligned(t *testing.T) {
	moscow := time.FixedZone("MSK", 3*3600)
	// 02:30:59 +03:00 is 23:30:59 UTC the day before; minus 24h, truncated to the minute.
	starts := time.Date(2031, 3, 30, 2, 30, 59, 0, moscow)
	got := reminderTime(starts, 24*time.Hour)
	want := time.Date(2031, 3, 28, 23, 30, 0, 0, time.UTC)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("reminderTime = %s, want %s", got, want)
	}
	if s := cronSchedule(got); s != "30 23 28 3 *" {
		t.Fatalf("cronSchedule = %q", s)
	}
	// Across a year boundary with a lead that is not whole hours.
	got = reminderTime(time.Date(2031, 1, 1, 0, 10, 0, 0, time.UTC), 90*time.Minute)
	if s := cronSchedule(got); s != "40 22 31 12 *" || got.Year() != 2030 {
		t.Fatalf("across new year: %s, %q", got, s)
	}
}

func TestRequeueAfter(t *testing.T) {
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := (reminderPlan{}).requeueAfter(now); d != 0 {
		t.Fatalf("no wake-up: %s", d)
	}
	if d := (reminderPlan{wakeAt: now.Add(time.Hour)}).requeueAfter(now); d != time.Hour+time.Second {
		t.Fatalf("an hour ahead: %s", d)
	}
	if d := (reminderPlan{wakeAt: now.Add(-time.Hour)}).requeueAfter(now); d != time.Second {
		t.Fatalf("in the past: %s", d)
	}
}

func TestNames(t *testing.T) {
	evl := &sborv1.EventLifecycle{ObjectMeta: metav1.ObjectMeta{Name: "0b9f3c1e-5d7a-4e2b-9c8d-1a2b3c4d5e6f"}}
	if got := cronJobName(evl); got != "remind-0b9f3c1e-5d7a-4e2b-9c8d-1a2b3c4d5e6f" {
		t.Fatalf("cronJobName = %q", got)
	}
	if got := immediateJobName(evl); got != "remind-0b9f3c1e-5d7a-4e2b-9c8d-1a2b3c4d5e6f-now" {
		t.Fatalf("immediateJobName = %q", got)
	}
	long := &sborv1.EventLifecycle{ObjectMeta: metav1.ObjectMeta{Name: "a-very-long-event-lifecycle-name-written-by-hand-for-a-test.x"}}
	got := cronJobName(long)
	if len(got) > 52 || got == cronJobName(&sborv1.EventLifecycle{ObjectMeta: metav1.ObjectMeta{Name: long.Name + "y"}}) {
		t.Fatalf("long name: %q (%d)", got, len(got))
	}
	if v := labelValue(long.Name + long.Name); len(v) > 63 {
		t.Fatalf("labelValue too long: %q", v)
	}
}
