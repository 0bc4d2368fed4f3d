-- +goose Up
-- One row per event. Every state change is a single UPDATE guarded by the state it starts
-- from, and bumps version, so concurrent transitions serialise on the row and at most one of
-- two conflicting ones takes effect.
CREATE TABLE events (
    id               uuid PRIMARY KEY,
    organizer_id     uuid        NOT NULL,
    title            text        NOT NULL CHECK (title <> ''),
    description      text        NOT NULL DEFAULT '',
    venue            text        NOT NULL DEFAULT '',
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'cancelled')),
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- published_at tells a cancelled event that was once public from a cancelled draft.
    published_at     timestamptz,
    cancelled_at     timestamptz,
    reminder_sent_at timestamptz,
    CHECK (ends_at > starts_at)
);

-- The public list: published events in start order, paged by (starts_at, id).
CREATE INDEX events_published_by_start ON events (starts_at, id) WHERE status = 'published';
-- An organizer's own events, every status, in the same order.
CREATE INDEX events_organizer_by_start ON events (organizer_id, starts_at, id);
-- The reminder loop's work: published events still waiting for their reminder.
CREATE INDEX events_reminder_due ON events (starts_at) WHERE status = 'published' AND reminder_sent_at IS NULL;

-- +goose Down
DROP TABLE events;
