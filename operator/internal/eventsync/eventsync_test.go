package eventsync

// Pure-logic tests of the decisions; operator/operator_test.go runs the Mirror end to end on
// real Kafka and a real API server.

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

func data(version int64, title, status string) cloudevent.EventData {
	starts := time.Date(2031, 5, 17, 18, 30, 0, 0, time.UTC)
	return cloudevent.EventData{
		EventID: uuid.MustParse("0b9f3c1e-5d7a-4e2b-9c8d-1a2b3c4d5e6f"), Title: title, Status: status, Version: version,
		StartsAt: starts, EndsAt: starts.Add(2 * time.Hour),
	}
}

func spec(d cloudevent.EventData) sborv1.EventLifecycleSpec {
	var e sborv1.EventLifecycle
	setSpec(&e, d)
	return e.Spec
}

func TestDecide(t *testing.T) {
	lead := &metav1.Duration{Duration: time.Hour}
	cur := spec(data(3, "v3", statusPublished))
	cur.ReminderLead = lead

	next, stale := decide(cur, data(4, "v4", statusPublished), false)
	if stale || next.Title != "v4" || next.Version != 4 || next.ReminderLead != lead {
		t.Errorf("newer: stale %v next %+v (the lead set by a person must stay)", stale, next)
	}
	if next, stale := decide(cur, data(3, "v3", statusPublished), false); stale || !equality.Semantic.DeepEqual(next, cur) {
		t.Errorf("redelivery: stale %v, changed %v", stale, !equality.Semantic.DeepEqual(next, cur))
	}
	if _, stale := decide(cur, data(2, "v2", statusPublished), false); !stale {
		t.Errorf("older version not stale")
	}
	next, stale = decide(cur, data(2, "v2", statusCancelled), true)
	if stale || !next.Cancelled || next.Version != 3 || next.Title != "v3" {
		t.Errorf("late cancellation must still cancel, keeping the newer fields: stale %v next %+v", stale, next)
	}
	cancelled := cur
	cancelled.Cancelled = true
	if next, _ := decide(cancelled, data(5, "v5", statusPublished), false); !next.Cancelled {
		t.Errorf("an update un-cancelled the event")
	}
}

func TestSetSpecFitsTheSchema(t *testing.T) {
	d := data(1, strings.Repeat("ж", 250), statusPublished)
	d.StartsAt = time.Date(2031, 5, 17, 21, 30, 0, 123456789, time.FixedZone("MSK", 3*3600))
	s := spec(d)
	if n := len([]rune(s.Title)); n != maxTitle {
		t.Errorf("title of %d characters", n)
	}
	if s.StartsAt.Location() != time.UTC || s.StartsAt.Nanosecond() != 0 || s.StartsAt.Hour() != 18 {
		t.Errorf("startsAt = %s", s.StartsAt)
	}
	if s.EventID != "0b9f3c1e-5d7a-4e2b-9c8d-1a2b3c4d5e6f" || ResourceName(d.EventID) != s.EventID {
		t.Errorf("event id %q", s.EventID)
	}
}

func TestHandleSkipsWhatCanNeverApply(t *testing.T) {
	m := &Mirror{Namespace: "sbor", Log: slog.New(slog.DiscardHandler)} // no client: these never reach it
	noID, _ := cloudevent.New("sbor-event", cloudevent.TypeEventPublished, "x", time.Now(), cloudevent.EventData{Title: "no id"})
	wrongData, _ := cloudevent.New("sbor-event", cloudevent.TypeEventPublished, "x", time.Now(), map[string]any{"event_id": 42})
	for name, value := range map[string][]byte{
		"not JSON":         []byte("{"),
		"not a CloudEvent": []byte(`{"hello":"world"}`),
		"no event id":      mustJSON(t, noID),
		"wrong data type":  mustJSON(t, wrongData),
	} {
		err := m.Handle(context.Background(), kafka.Message{Topic: "event.published", Value: value})
		if !errors.Is(err, kafkabus.ErrPermanent) {
			t.Errorf("%s: %v, want a permanent failure", name, err)
		}
	}
	// A type the operator does not mirror, and a draft, are no-ops that never touch the client.
	other, _ := cloudevent.New("sbor-ticket", cloudevent.TypeTicketPurchased, "x", time.Now(), data(1, "ok", statusPublished))
	draft, _ := cloudevent.New("sbor-event", cloudevent.TypeEventUpdated, "x", time.Now(), data(1, "draft", "draft"))
	for _, ev := range []cloudevent.Event{other, draft} {
		if err := m.Handle(context.Background(), kafka.Message{Value: mustJSON(t, ev)}); err != nil {
			t.Errorf("%s: %v", ev.Type, err)
		}
	}
}

func mustJSON(t *testing.T, ev cloudevent.Event) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
