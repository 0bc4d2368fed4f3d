package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where an event is in its life, as the operator last saw it.
// +kubebuilder:validation:Enum=Published;Cancelled;Finished
type Phase string

// The phases of an event. A draft never gets a resource: the operator mirrors published events only.
const (
	// PhasePublished: the event is on sale or under way; its reminder is scheduled or sent.
	PhasePublished Phase = "Published"
	// PhaseCancelled: the organizer cancelled the event; no reminder is sent.
	PhaseCancelled Phase = "Cancelled"
	// PhaseFinished: the event is over (now is past endsAt).
	PhaseFinished Phase = "Finished"
)

// Condition types of an EventLifecycle.
const (
	// ConditionReady is True when everything the phase calls for is in place (the reminder
	// CronJob or Job, or its removal); False, with the failing step, when reconciling failed.
	ConditionReady = "Ready"
	// ConditionReminderScheduled is True while a CronJob or an immediate Job is there to send the
	// reminder, and False, with the reason, when none is needed (sent, cancelled, started, over).
	ConditionReminderScheduled = "ReminderScheduled"
	// ConditionTopicsReady reports whether the platform's Kafka topics exist (as Strimzi
	// KafkaTopic resources or through Kafka's admin API), which the reminder's delivery needs.
	ConditionTopicsReady = "TopicsReady"
)

// EventLifecycleSpec is the event as the event service last announced it on Kafka.
//
// +kubebuilder:validation:XValidation:rule="self.endsAt > self.startsAt",message="endsAt must be after startsAt"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cancelled) || !oldSelf.cancelled || (has(self.cancelled) && self.cancelled)",message="cancelled cannot be undone: a cancelled event stays cancelled"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.version) || (has(self.version) && self.version >= oldSelf.version)",message="version must not decrease: an older announcement cannot overwrite a newer one"
type EventLifecycleSpec struct {
	// EventID is the event's id in the event service (a UUID).
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="eventID is immutable"
	EventID string `json:"eventID"`

	// Title is the event's title.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	Title string `json:"title"`

	// StartsAt is when the event starts (RFC 3339).
	StartsAt metav1.Time `json:"startsAt"`

	// EndsAt is when the event ends; it must be after StartsAt.
	EndsAt metav1.Time `json:"endsAt"`

	// ReminderLead is how long before StartsAt the reminder goes out (a Go duration such as
	// "24h" or "90m"). Empty means the operator's default (SBOR_OPERATOR_REMINDER_LEAD, 24h).
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('8760h')",message="reminderLead must be a duration between 1s and 8760h"
	ReminderLead *metav1.Duration `json:"reminderLead,omitempty"`

	// Cancelled is set when the organizer cancelled the event. It cannot be undone.
	// +optional
	Cancelled bool `json:"cancelled,omitempty"`

	// Version is the event service's version of the event; it only grows, so an announcement
	// that arrives late cannot overwrite a newer one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Version int64 `json:"version,omitempty"`
}

// EventLifecycleStatus is what the operator observed and did.
type EventLifecycleStatus struct {
	// Phase is Published, Cancelled or Finished.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// ReminderScheduledFor is when the reminder fires: the minute of startsAt − reminderLead
	// (UTC) for the CronJob, or the time the immediate Job was created when the event was
	// published inside the lead time.
	// +optional
	ReminderScheduledFor *metav1.Time `json:"reminderScheduledFor,omitempty"`

	// ReminderSentAt is when the event service announced the reminder (event.reminder).
	// +optional
	ReminderSentAt *metav1.Time `json:"reminderSentAt,omitempty"`

	// ReminderCronJob is the name of the CronJob that sends the reminder, while there is one.
	// +optional
	ReminderCronJob string `json:"reminderCronJob,omitempty"`

	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, ReminderScheduled and TopicsReady.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// EventLifecycle mirrors one published Sbor event: the operator keeps its reminder CronJob and
// records its phase. The resource is named after the event's id.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=evl,categories=sbor
// +kubebuilder:printcolumn:name="Title",type=string,JSONPath=`.spec.title`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Starts",type=string,format=date-time,JSONPath=`.spec.startsAt`
// +kubebuilder:printcolumn:name="Reminder",type=string,format=date-time,JSONPath=`.status.reminderScheduledFor`
// +kubebuilder:printcolumn:name="Sent",type=string,format=date-time,JSONPath=`.status.reminderSentAt`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EventLifecycle struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EventLifecycleSpec   `json:"spec"`
	Status EventLifecycleStatus `json:"status,omitempty"`
}

// EventLifecycleList is a list of EventLifecycle.
//
// +kubebuilder:object:root=true
type EventLifecycleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EventLifecycle `json:"items"`
}
