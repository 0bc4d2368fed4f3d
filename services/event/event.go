// Package event is the event service: organizers create, edit, publish and cancel events,
// anyone lists and reads published ones (flows 4, 5, 6 and 13 of the design), and the
// reminder of each published event is sent once, shortly before it starts.
//
// Layers: http.go (routes, JSON ↔ business converters) → Core (rules) → Store (SQL).
// Every state change is one UPDATE guarded by the state it starts from, so of two
// conflicting concurrent requests only one takes effect, and it writes its CloudEvent
// (event.updated, event.published, event.cancelled, event.reminder) to the outbox in the
// same transaction; the outbox relay publishes it to Kafka.
package event

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/outbox"
)

// Source is the CloudEvents source of every message this service publishes.
const Source = "sbor/event"

// Topics are the topics this service publishes to (before the topic prefix).
var Topics = []string{
	cloudevent.TypeEventPublished, cloudevent.TypeEventUpdated,
	cloudevent.TypeEventCancelled, cloudevent.TypeEventReminder,
}

// Core holds the event service's rules.
type Core struct {
	store *Store
	now   func() time.Time
}

// NewCore returns the business layer.
func NewCore(store *Store) *Core {
	return &Core{store: store, now: time.Now}
}

var errNotOwner = errs.New(errs.Forbidden, "not_owner", "only the event's organizer may do this")

// Create makes a draft owned by the caller, who must be an organizer.
func (c *Core) Create(ctx context.Context, caller identity.Identity, ne NewEvent) (Event, error) {
	if !caller.IsOrganizer() {
		return Event{}, errs.New(errs.Forbidden, "organizer_required", "only organizers may create events; POST /api/users/me/become-organizer first")
	}
	ne, err := ne.Validate(c.now())
	if err != nil {
		return Event{}, err
	}
	return c.store.Create(ctx, uuid.New(), caller.UserID, ne)
}

// Get returns an event as viewer (nil for an anonymous caller) may see it: a draft only to
// its organizer, and a cancelled event only if it was public before (a cancelled draft stays
// private). Anything else is NotFound, so nobody learns that a private event exists.
func (c *Core) Get(ctx context.Context, viewer *identity.Identity, id uuid.UUID) (Event, error) {
	ev, err := c.store.ByID(ctx, id)
	if err != nil {
		return Event{}, err
	}
	if !ev.WasPublic() && (viewer == nil || viewer.UserID != ev.OrganizerID) {
		return Event{}, errNotFound
	}
	return ev, nil
}

// ByID returns an event in any status, for other services.
func (c *Core) ByID(ctx context.Context, id uuid.UUID) (Event, error) {
	return c.store.ByID(ctx, id)
}

// ListPublished pages through published events by start time.
func (c *Core) ListPublished(ctx context.Context, pr PageRequest) (Page, error) {
	evs, err := c.store.ListPublished(ctx, pr.After, pr.Limit+1)
	return page(evs, pr.Limit), err
}

// ListOwn pages through the caller's events of every status by start time.
func (c *Core) ListOwn(ctx context.Context, caller identity.Identity, pr PageRequest) (Page, error) {
	evs, err := c.store.ListByOrganizer(ctx, caller.UserID, pr.After, pr.Limit+1)
	return page(evs, pr.Limit), err
}

// page cuts one more row than asked for into a page and the cursor of the next.
func page(evs []Event, limit int) Page {
	if len(evs) <= limit {
		return Page{Items: evs}
	}
	last := evs[limit-1]
	return Page{Items: evs[:limit], Next: &Cursor{StartsAt: last.StartsAt, ID: last.ID}}
}

// Update replaces the fields of the caller's draft and announces event.updated.
func (c *Core) Update(ctx context.Context, caller identity.Identity, id uuid.UUID, ne NewEvent) (Event, error) {
	// Who may touch the event and in what state are answered before the body is judged, so a
	// stranger learns nothing from validation errors. The UPDATE below guards again.
	if _, err := c.owned(ctx, caller, id, StatusDraft); err != nil {
		return Event{}, err
	}
	ne, err := ne.Validate(c.now())
	if err != nil {
		return Event{}, err
	}
	ev, err := c.store.UpdateDraft(ctx, id, caller.UserID, ne, announce(cloudevent.TypeEventUpdated))
	if errors.Is(err, errGuardFailed) {
		return Event{}, c.explain(ctx, caller, id, StatusDraft)
	}
	return ev, err
}

// Publish makes the caller's draft published and announces event.published. An event whose
// start has passed cannot be published.
func (c *Core) Publish(ctx context.Context, caller identity.Identity, id uuid.UUID) (Event, error) {
	ev, err := c.store.Publish(ctx, id, caller.UserID, announce(cloudevent.TypeEventPublished))
	if errors.Is(err, errGuardFailed) {
		if _, err := c.owned(ctx, caller, id, StatusDraft); err != nil {
			return Event{}, err
		}
		// The caller's draft: the guard that failed is the start time, by the database's clock.
		return Event{}, errs.New(errs.Conflict, "event_started", "an event whose start has passed cannot be published")
	}
	return ev, err
}

// Cancel cancels the caller's draft or published event and announces event.cancelled.
func (c *Core) Cancel(ctx context.Context, caller identity.Identity, id uuid.UUID) (Event, error) {
	ev, err := c.store.Cancel(ctx, id, caller.UserID, announce(cloudevent.TypeEventCancelled))
	if errors.Is(err, errGuardFailed) {
		return Event{}, c.explain(ctx, caller, id, StatusDraft, StatusPublished)
	}
	return ev, err
}

// owned reads the event and checks that the caller owns it and that it is in one of the
// given states.
func (c *Core) owned(ctx context.Context, caller identity.Identity, id uuid.UUID, states ...Status) (Event, error) {
	ev, err := c.store.ByID(ctx, id)
	if err != nil {
		return Event{}, err
	}
	if ev.OrganizerID != caller.UserID {
		return Event{}, errNotOwner
	}
	if !slices.Contains(states, ev.Status) {
		if ev.Status == StatusCancelled && slices.Contains(states, StatusPublished) {
			return Event{}, errs.New(errs.Conflict, "already_cancelled", "the event is already cancelled")
		}
		return Event{}, errs.Newf(errs.Conflict, "not_draft", "the event is %s; only a draft can be changed or published", ev.Status)
	}
	return ev, nil
}

// explain says why a guarded transition matched no row.
func (c *Core) explain(ctx context.Context, caller identity.Identity, id uuid.UUID, states ...Status) error {
	if _, err := c.owned(ctx, caller, id, states...); err != nil {
		return err
	}
	// The guard failed yet the row now passes it: unreachable while states only move
	// forward. Answer something a retry resolves rather than a 500.
	return errs.New(errs.Conflict, "concurrent_change", "the event changed concurrently; retry")
}

// Remind sends a published event's reminder unless it was sent before, whoever asks and
// however often. Only the call that sends it reports Sent.
func (c *Core) Remind(ctx context.Context, id uuid.UUID) (RemindResult, error) {
	ev, err := c.store.MarkReminded(ctx, id, announce(cloudevent.TypeEventReminder))
	if err == nil {
		return RemindResult{Sent: true, SentAt: *ev.ReminderSentAt}, nil
	}
	if !errors.Is(err, errGuardFailed) {
		return RemindResult{}, err
	}
	ev, err = c.store.ByID(ctx, id)
	if err != nil {
		return RemindResult{}, err
	}
	if ev.Status != StatusPublished {
		return RemindResult{}, errs.Newf(errs.Conflict, "not_published", "the event is %s; only a published event has a reminder", ev.Status)
	}
	if ev.ReminderSentAt == nil {
		// Published without a reminder, yet the guard failed: it changed in between.
		return RemindResult{}, errs.New(errs.Conflict, "concurrent_change", "the event changed concurrently; retry")
	}
	return RemindResult{Sent: false, SentAt: *ev.ReminderSentAt}, nil
}

// reminderBatch bounds the events one reminder transaction takes.
const reminderBatch = 200

// SendDueReminders sends the reminder of every published event that starts within lead and
// has had none, and returns how many it sent.
func (c *Core) SendDueReminders(ctx context.Context, lead time.Duration) (int, error) {
	total := 0
	for {
		evs, err := c.store.MarkDueReminded(ctx, lead, reminderBatch, announce(cloudevent.TypeEventReminder))
		total += len(evs)
		if err != nil || len(evs) < reminderBatch {
			return total, err
		}
	}
}

// RunReminders sends due reminders every interval until ctx ends.
func (c *Core) RunReminders(ctx context.Context, log *slog.Logger, lead, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := c.SendDueReminders(ctx, lead)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("sending due reminders failed", "err", err)
		case n > 0:
			log.Info("reminders sent", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// announce returns the Announce that makes the CloudEvent of type typ about an event: keyed
// by the event id, so one event's messages stay in order, with the event as it is after the
// change.
func announce(typ string) Announce {
	return func(ev Event) (outbox.Message, error) {
		ce, err := cloudevent.New(Source, typ, ev.ID.String(), ev.UpdatedAt, toEventData(ev))
		if err != nil {
			return outbox.Message{}, err
		}
		return outbox.FromEvent(ev.ID.String(), ce, nil)
	}
}

// toEventData is the event.* payload of an event.
func toEventData(ev Event) cloudevent.EventData {
	return cloudevent.EventData{
		EventID: ev.ID, OrganizerID: ev.OrganizerID, Title: ev.Title, Venue: ev.Venue,
		StartsAt: ev.StartsAt, EndsAt: ev.EndsAt, Status: string(ev.Status), Version: ev.Version,
	}
}
