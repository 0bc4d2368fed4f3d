-- +goose Up

-- One Ed25519 signing key per event (issue 10, signed ticket codes). Created once, when the
-- event's first ticket type is created (INSERT ... ON CONFLICT DO NOTHING, then read, so
-- concurrent creators agree on one key), and never changed: replicas cache it forever.
-- private_key is the 32-byte RFC 8032 seed; it never leaves this database and this service.
-- kid = base64url(first 8 bytes of SHA-256(public_key)), 11 characters.
CREATE TABLE event_signing_keys (
    event_id    uuid        PRIMARY KEY,
    kid         text        NOT NULL CHECK (kid ~ '^[A-Za-z0-9_-]{11}$'),
    public_key  bytea       NOT NULL CHECK (octet_length(public_key) = 32),
    private_key bytea       NOT NULL CHECK (octet_length(private_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Revocations: a ticket that a scanner must refuse offline (cancelled with its event, or
-- transferred away) gets revoked_at and a revocation_seq drawn from this sequence. The
-- revocation list of an event (GET /api/events/{id}/revocations?since=n) pages by
-- revocation_seq > n. The reason is the ticket's status ('cancelled' or 'transferred').
--
-- A cursor is only safe if, per event, revocations commit in sequence order: every statement
-- that sets revocation_seq must hold the event's advisory lock (eventLockSQL in store.go,
-- taken by the event.cancelled consumer and by transfers) and draw nextval after taking it,
-- so a poller that has seen seq n can never later find a committed n' < n of that event.
CREATE SEQUENCE ticket_revocation_seq AS bigint;

ALTER TABLE tickets
    ADD COLUMN revoked_at     timestamptz,
    ADD COLUMN revocation_seq bigint,
    ADD CONSTRAINT tickets_revocation_pair CHECK ((revoked_at IS NULL) = (revocation_seq IS NULL));

-- Tickets cancelled before this migration are revoked in the order they were cancelled.
WITH ordered AS (
    SELECT id, coalesce(cancelled_at, now()) AS at, row_number() OVER (ORDER BY cancelled_at, id) AS n
    FROM tickets WHERE status = 'cancelled'
)
UPDATE tickets SET revoked_at = ordered.at, revocation_seq = ordered.n
FROM ordered WHERE tickets.id = ordered.id;
SELECT setval('ticket_revocation_seq', coalesce(max(revocation_seq), 0) + 1, false) FROM tickets;

-- A cancelled ticket is always revoked (the event.cancelled statement sets both at once).
ALTER TABLE tickets ADD CONSTRAINT tickets_cancelled_revoked CHECK (status <> 'cancelled' OR revocation_seq IS NOT NULL);

CREATE UNIQUE INDEX tickets_revocation_seq_key ON tickets (revocation_seq);
CREATE INDEX tickets_event_revocations ON tickets (event_id, revocation_seq) WHERE revocation_seq IS NOT NULL;

-- +goose Down
DROP INDEX tickets_event_revocations;
DROP INDEX tickets_revocation_seq_key;
ALTER TABLE tickets
    DROP CONSTRAINT tickets_cancelled_revoked,
    DROP CONSTRAINT tickets_revocation_pair,
    DROP COLUMN revocation_seq,
    DROP COLUMN revoked_at;
DROP SEQUENCE ticket_revocation_seq;
DROP TABLE event_signing_keys;
