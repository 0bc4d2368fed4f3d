// Package eventsync mirrors the event service's Kafka announcements (event.published,
// event.updated, event.cancelled, event.reminder) into EventLifecycle resources.
//
// It runs inside the operator's manager as a Runnable on the leader, consuming as one Kafka
// consumer group, so a restart resumes from the committed offsets. It is idempotent and keeps
// each event's history in order: messages are keyed by the event id (one partition per event,
// handled one at a time), the resource records the event service's version, and a message older
// than what the resource holds is dropped — the CRD's own validation refuses a version that
// goes back, so not even a racing writer can undo a newer state.
package eventsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// Event statuses in EventData.
const (
	statusPublished = "published"
	statusCancelled = "cancelled"
)

// maxTitle is the CRD's limit on spec.title; a longer title is cut rather than refused.
const maxTitle = 200

// Types are the message types the mirror consumes.
var Types = []string{
	cloudevent.TypeEventPublished, cloudevent.TypeEventUpdated,
	cloudevent.TypeEventCancelled, cloudevent.TypeEventReminder,
}

// Mirror consumes the event topics and writes EventLifecycle resources.
type Mirror struct {
	// Client writes resources; Reader reads them straight from the API server (a cache could
	// lag behind this consumer's own writes).
	Client    client.Client
	Reader    client.Reader
	Namespace string

	Brokers []string
	// Group is the Kafka consumer group; its committed offsets survive restarts.
	Group string
	// TopicPrefix is prepended to each topic name (SBOR_KAFKA_TOPIC_PREFIX).
	TopicPrefix string
	Log         *slog.Logger
}

// Start consumes until ctx ends.
func (m *Mirror) Start(ctx context.Context) error {
	topics := make([]string, len(Types))
	for i, t := range Types {
		topics[i] = m.TopicPrefix + t
	}
	c := &kafkabus.Consumer{
		Brokers: m.Brokers, Group: m.Group, Topics: topics,
		Handler: m.Handle, Log: m.Log,
	}
	m.Log.Info("mirroring events from Kafka", "group", m.Group, "topics", topics, "namespace", m.Namespace)
	return c.Run(ctx)
}

// NeedLeaderElection: only the leader consumes, so two replicas never race on one event.
func (m *Mirror) NeedLeaderElection() bool { return true }

// Handle applies one message. A message that can never apply (not a CloudEvent, bad data, a
// resource the API server refuses) is a permanent failure and is skipped; anything else
// (API server unreachable, a conflict) is retried by the consumer without committing.
func (m *Mirror) Handle(ctx context.Context, msg kafka.Message) error {
	ce, err := cloudevent.Decode(msg.Value)
	if err != nil {
		return kafkabus.Permanent(err)
	}
	var data cloudevent.EventData
	if err := ce.DecodeData(&data); err != nil {
		return kafkabus.Permanent(err)
	}
	if data.EventID == uuid.Nil {
		return kafkabus.Permanent(fmt.Errorf("%s %s: no event_id", ce.Type, ce.ID))
	}
	log := m.Log.With("type", ce.Type, "event_id", data.EventID, "version", data.Version, "at", kafkabus.Where(msg))
	switch ce.Type {
	case cloudevent.TypeEventPublished, cloudevent.TypeEventUpdated:
		if data.Status == statusCancelled {
			return m.apply(ctx, log, data, true)
		}
		if data.Status != statusPublished {
			log.Debug("ignoring an event that is not published", "status", data.Status)
			return nil
		}
		return m.apply(ctx, log, data, false)
	case cloudevent.TypeEventCancelled:
		return m.apply(ctx, log, data, true)
	case cloudevent.TypeEventReminder:
		sentAt := ce.Time
		if sentAt.IsZero() {
			sentAt = time.Now()
		}
		return m.reminderSent(ctx, log, data, sentAt)
	default:
		log.Debug("ignoring a message type the operator does not mirror")
		return nil
	}
}

// apply creates or updates the event's resource from data; cancelled marks it cancelled.
func (m *Mirror) apply(ctx context.Context, log *slog.Logger, data cloudevent.EventData, cancelled bool) error {
	key := types.NamespacedName{Namespace: m.Namespace, Name: ResourceName(data.EventID)}
	var evl sborv1.EventLifecycle
	err := m.Reader.Get(ctx, key, &evl)
	if apierrors.IsNotFound(err) {
		if cancelled {
			// Never mirrored while published (e.g. a draft cancelled): there is no reminder to
			// stop, and the operator keeps resources for published events only.
			log.Info("cancelled event has no EventLifecycle; nothing to do")
			return nil
		}
		evl = sborv1.EventLifecycle{ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace,
			Labels: map[string]string{"sbor.dev/event-id": data.EventID.String(), "app.kubernetes.io/managed-by": "sbor-operator"},
		}}
		setSpec(&evl, data)
		if err := m.Client.Create(ctx, &evl); err != nil {
			return classify(err, "create EventLifecycle "+key.Name)
		}
		log.Info("created EventLifecycle", "name", key.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get EventLifecycle %s: %w", key.Name, err)
	}

	next, stale := decide(evl.Spec, data, cancelled)
	if stale {
		log.Info("dropping a stale announcement", "resource_version", evl.Spec.Version)
		return nil
	}
	if equality.Semantic.DeepEqual(next, evl.Spec) {
		return nil // a redelivery: already applied
	}
	evl.Spec = next
	if err := m.Client.Update(ctx, &evl); err != nil {
		return classify(err, "update EventLifecycle "+key.Name)
	}
	log.Info("updated EventLifecycle", "name", key.Name, "cancelled", next.Cancelled)
	return nil
}

// decide computes the spec after an announcement: a newer version replaces the event's fields;
// an older one is stale — except a cancellation, which is final and always applies (an event
// never comes back from cancelled).
func decide(cur sborv1.EventLifecycleSpec, data cloudevent.EventData, cancelled bool) (next sborv1.EventLifecycleSpec, stale bool) {
	next = cur
	if data.Version < cur.Version {
		if !cancelled || cur.Cancelled {
			return cur, true
		}
		next.Cancelled = true
		return next, false
	}
	var from sborv1.EventLifecycle
	setSpec(&from, data)
	from.Spec.ReminderLead = cur.ReminderLead // set by people, not by the event service
	from.Spec.Cancelled = cur.Cancelled || cancelled
	return from.Spec, false
}

// setSpec fills the spec from the announced event.
func setSpec(evl *sborv1.EventLifecycle, data cloudevent.EventData) {
	title := data.Title
	if utf8.RuneCountInString(title) > maxTitle {
		title = string([]rune(title)[:maxTitle])
	}
	evl.Spec.EventID = data.EventID.String()
	evl.Spec.Title = title
	evl.Spec.StartsAt = metav1.NewTime(data.StartsAt.UTC().Truncate(time.Second))
	evl.Spec.EndsAt = metav1.NewTime(data.EndsAt.UTC().Truncate(time.Second))
	evl.Spec.Version = data.Version
	evl.Spec.Cancelled = data.Status == statusCancelled
}

// reminderSent records that the event service announced the reminder.
func (m *Mirror) reminderSent(ctx context.Context, log *slog.Logger, data cloudevent.EventData, at time.Time) error {
	key := types.NamespacedName{Namespace: m.Namespace, Name: ResourceName(data.EventID)}
	var evl sborv1.EventLifecycle
	err := m.Reader.Get(ctx, key, &evl)
	if apierrors.IsNotFound(err) {
		log.Info("reminder for an event without EventLifecycle; nothing to do")
		return nil
	}
	if err != nil {
		return fmt.Errorf("get EventLifecycle %s: %w", key.Name, err)
	}
	if evl.Status.ReminderSentAt != nil {
		return nil // a redelivery
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"reminderSentAt": metav1.NewTime(at.UTC().Truncate(time.Second))}})
	if err != nil {
		return err
	}
	if err := m.Client.Status().Patch(ctx, &evl, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return classify(err, "record reminderSentAt of "+key.Name)
	}
	log.Info("recorded the reminder", "name", key.Name, "sent_at", at.UTC())
	return nil
}

// ResourceName is the EventLifecycle's name for an event: its id.
func ResourceName(id uuid.UUID) string { return id.String() }

// classify makes a refusal that retrying cannot change permanent (the resource is invalid,
// e.g. endsAt not after startsAt), and keeps everything else retryable.
func classify(err error, what string) error {
	err = fmt.Errorf("%s: %w", what, err)
	var status apierrors.APIStatus
	if errors.As(err, &status) && (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) {
		return kafkabus.Permanent(err)
	}
	return err
}
