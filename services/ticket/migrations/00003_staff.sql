-- +goose Up

-- What this service knows of an event beyond its ticket types: its organizer, title and start,
-- copied from the event service (GET /internal/events/{id}) when the event's first staff
-- member is granted or when its organizer first lists the events they may scan. Only
-- published events are recorded, and a published event's organizer, title and times no
-- longer change, so a row never goes stale.
CREATE TABLE event_facts (
    event_id     uuid PRIMARY KEY,
    organizer_id uuid        NOT NULL,
    title        text        NOT NULL,
    starts_at    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- Door staff (issue 10): users the organizer allowed to validate and check in one event's
-- tickets. A revocation deletes the row, and check-in tests the row in its own UPDATE, so a
-- revoked member's next check-in is refused.
CREATE TABLE event_staff (
    event_id   uuid        NOT NULL REFERENCES event_facts (event_id),
    user_id    uuid        NOT NULL,
    -- The email the organizer typed, as the user service normalised it, for the staff list.
    email      text        NOT NULL,
    granted_at timestamptz NOT NULL,
    granted_by uuid        NOT NULL,
    PRIMARY KEY (event_id, user_id)
);
-- GET /api/staff/events: the events a user was granted.
CREATE INDEX event_staff_user ON event_staff (user_id, event_id);

-- The owner's events for GET /api/staff/events, by organizer.
CREATE INDEX ticket_types_organizer ON ticket_types (organizer_id, event_id);

-- The checked-in count of GET /api/events/{id}/stats, per type, without reading the event's
-- other tickets.
CREATE INDEX tickets_event_used ON tickets (event_id, ticket_type_id) WHERE status = 'used';

-- +goose Down
DROP INDEX tickets_event_used;
DROP INDEX ticket_types_organizer;
DROP TABLE event_staff;
DROP TABLE event_facts;
