-- +goose Up
-- One row per message shown to a user. source_id is the id of the CloudEvent that caused it:
-- the unique key (source_id, user_id, type) is what makes the consumers idempotent. Kafka
-- redelivering a message, a consumer crashing half-way through a cancellation's holders, or
-- two replicas handling the same message all end in one row per user, because every insert
-- is ON CONFLICT DO NOTHING against this key.
CREATE TABLE notifications (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    type       text        NOT NULL CHECK (type IN ('ticket.purchased', 'event.cancelled', 'event.reminder')),
    title      text        NOT NULL,
    body       text        NOT NULL,
    event_id   uuid        NOT NULL,
    ticket_id  uuid,
    source_id  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz,
    CONSTRAINT notifications_source_user_type_key UNIQUE (source_id, user_id, type)
);
-- A user's list, newest first, paged by (created_at, id).
CREATE INDEX notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
-- The unread badge counts only unread rows.
CREATE INDEX notifications_user_unread ON notifications (user_id) WHERE read_at IS NULL;

-- Messages that can never be handled (bad JSON, not a CloudEvent, unknown type, bad data),
-- parked for a human instead of blocking their partition. One row per message position, so a
-- second consumer group sharing this database parks it once.
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text        NOT NULL,
    "partition" integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         bytea,
    payload     bytea,
    error       text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dead_letters_position_key UNIQUE (topic, "partition", "offset")
);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE notifications;
