-- +goose Up

-- What can be bought for an event. organizer_id and event_title are copied from the event
-- service when the type is created (only a published event gets types, and a published
-- event's organizer and title no longer change), so purchases, validation and check-in
-- never need to ask the event service who owns a ticket.
CREATE TABLE ticket_types (
    id                 uuid PRIMARY KEY,
    event_id           uuid        NOT NULL,
    organizer_id       uuid        NOT NULL,
    event_title        text        NOT NULL,
    type               text        NOT NULL CHECK (type IN ('standard', 'vip', 'early_bird')),
    price_cents        bigint      NOT NULL CHECK (price_cents >= 0),
    currency           text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    quantity           integer     NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    -- The guarded counter: a purchase is one UPDATE ... SET sold = sold + 1 WHERE sold <
    -- quantity, and this CHECK makes an oversell impossible even for a buggy statement.
    sold               integer     NOT NULL DEFAULT 0 CHECK (sold >= 0 AND sold <= quantity),
    sales_start        timestamptz NOT NULL,
    sales_end          timestamptz NOT NULL,
    -- Set by the event.cancelled consumer. Purchases test it on the counter row itself, so a
    -- purchase racing the consumer either commits first (and its ticket is then cancelled by
    -- the consumer) or sees the cancellation: never an active ticket for a cancelled event.
    event_cancelled_at timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (sales_start < sales_end),
    CONSTRAINT ticket_types_event_type_key UNIQUE (event_id, type)
);

-- Events whose cancellation reached this service (from event.cancelled), so purchases and
-- new types are refused even while the event service is down.
CREATE TABLE cancelled_events (
    event_id     uuid PRIMARY KEY,
    organizer_id uuid        NOT NULL,
    cancelled_at timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- Ticket ids are UUIDv7, so ordering by id is purchase order and the lists page by id.
--
-- ticket_type_id has no foreign key on purpose: its check takes a KEY SHARE lock on the
-- type's row, the counter every buyer of the type is updating, which turns each purchase's
-- lock into a MultiXact and cost a third of the purchase throughput in BenchmarkPurchase.
-- purchase_ticket (below) is the only writer of tickets and commits a ticket only together
-- with the counter update of its type, which fails for a type that does not exist; types
-- are never deleted.
CREATE TABLE tickets (
    id             uuid PRIMARY KEY,
    code           text        NOT NULL CHECK (code ~ '^[0-9A-HJKMNP-TV-Z]{26}$'),
    event_id       uuid        NOT NULL,
    ticket_type_id uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    organizer_id   uuid        NOT NULL,
    status         text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'used', 'cancelled')),
    purchased_at   timestamptz NOT NULL,
    checked_in_at  timestamptz,
    cancelled_at   timestamptz,
    CHECK ((status = 'used') = (checked_in_at IS NOT NULL))
);
CREATE UNIQUE INDEX tickets_code_key ON tickets (code);
CREATE INDEX tickets_user ON tickets (user_id, id);
CREATE INDEX tickets_event ON tickets (event_id, id);

-- Idempotency-Key records of successful purchases. The primary key is what makes two
-- concurrent requests with one key end with one ticket: the second one's insert waits for
-- the first's commit and then fails, so its whole purchase rolls back and it replays the
-- first one's response instead.
CREATE TABLE purchase_requests (
    user_id         uuid        NOT NULL,
    idempotency_key text        NOT NULL,
    request_hash    bytea       NOT NULL,
    ticket_id       uuid        NOT NULL REFERENCES tickets (id),
    response        bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX purchase_requests_created ON purchase_requests (created_at);

-- purchase_ticket is the whole purchase as one statement (SELECT purchase_ticket(...)): the
-- ticket, its ticket.purchased outbox row and the Idempotency-Key record are inserted first,
-- and the guarded counter update comes last, so the counter row's lock — the one thing every
-- buyer of a type queues for — is held only from that update to the commit, not while the
-- rows and their indexes are written. When the counter refuses (sold out, sales window shut,
-- event cancelled) the function raises SB409, which rolls the whole statement back, inserts
-- included. A concurrent request with the same Idempotency-Key waits on the record's
-- primary key before it ever touches the counter, and fails there once the first commits.
-- +goose StatementBegin
CREATE FUNCTION purchase_ticket(
    p_type uuid, p_event uuid, p_organizer uuid, p_ticket uuid, p_code text, p_user uuid, p_at timestamptz,
    p_topic text, p_key text, p_payload bytea,
    p_idempotency_key text, p_request_hash bytea, p_response bytea
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at)
    VALUES (p_ticket, p_code, p_event, p_type, p_user, p_organizer, 'active', p_at);
    INSERT INTO outbox (topic, key, payload) VALUES (p_topic, p_key, p_payload);
    IF p_idempotency_key <> '' THEN
        INSERT INTO purchase_requests (user_id, idempotency_key, request_hash, ticket_id, response)
        VALUES (p_user, p_idempotency_key, p_request_hash, p_ticket, p_response);
    END IF;
    UPDATE ticket_types SET sold = sold + 1
    WHERE id = p_type AND event_id = p_event AND sold < quantity AND event_cancelled_at IS NULL
      AND sales_start <= now() AND now() < sales_end;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no ticket of type % can be sold now', p_type USING ERRCODE = 'SB409';
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION purchase_ticket;
DROP TABLE purchase_requests;
DROP TABLE tickets;
DROP TABLE cancelled_events;
DROP TABLE ticket_types;
