-- +goose Up

-- Purchase limits (issue 10): a type may cap how many of its tickets one user buys.
-- max_per_user never changes after the type is created, like every field but the counter.
ALTER TABLE ticket_types
    ADD COLUMN max_per_user integer,
    ADD CONSTRAINT ticket_types_max_per_user_check
        CHECK (max_per_user IS NULL OR (max_per_user BETWEEN 1 AND 100 AND max_per_user <= quantity));

-- How many tickets of a limited type each user has bought: the per-user counter the purchase
-- statement locks and guards, as ticket_types.sold is the per-type one. Only purchases count
-- (a transfer neither frees nor uses quota, so passing tickets on cannot lift the limit), and
-- tickets are never refunded, so bought never decreases. max_per_user is copied from the type
-- so the CHECK is a backstop against any statement that would go past the limit.
CREATE TABLE ticket_type_buyers (
    ticket_type_id uuid    NOT NULL,
    user_id        uuid    NOT NULL,
    max_per_user   integer NOT NULL,
    bought         integer NOT NULL CHECK (bought >= 0 AND bought <= max_per_user),
    PRIMARY KEY (ticket_type_id, user_id)
);

-- Transfers (issue 10): the holder gives an active ticket to another user. The old ticket
-- becomes 'transferred' and is revoked (revoked_at and revocation_seq of 00004, drawn under
-- the event's advisory lock); the recipient gets a new ticket (new id, new code) of the same
-- type whose transferred_from names the old one. The unique index makes a second successor of
-- one ticket impossible whatever the code does.
ALTER TABLE tickets DROP CONSTRAINT tickets_status_check;
ALTER TABLE tickets
    ADD CONSTRAINT tickets_status_check CHECK (status IN ('active', 'used', 'cancelled', 'transferred')),
    ADD COLUMN transferred_at   timestamptz,
    ADD COLUMN transferred_from uuid,
    ADD CONSTRAINT tickets_transferred_at CHECK ((status = 'transferred') = (transferred_at IS NOT NULL)),
    ADD CONSTRAINT tickets_transferred_revoked CHECK (status <> 'transferred' OR revocation_seq IS NOT NULL);
CREATE UNIQUE INDEX tickets_transferred_from_key ON tickets (transferred_from) WHERE transferred_from IS NOT NULL;

-- purchase_tickets_limited is purchase_tickets (00002) with the purchase limit: it returns the
-- tickets sold, as before, and the purchases refused because their buyer reached the type's
-- max_per_user. For a limited type, after the Idempotency-Key records decided which purchases
-- go on, it upserts the buyers' rows of ticket_type_buyers in user id order (so concurrent
-- batches, on any replica, lock them in one order and never deadlock) and, holding those row
-- locks until the commit, keeps each buyer's first (max_per_user - bought) purchases of the
-- batch. Under READ COMMITTED the upsert waits for a concurrent batch of the same buyer and
-- then reads the row's latest version, so a buyer's purchases in one batch, in several
-- batches and on several replicas at once are all counted against one limit. The counter
-- step follows as in 00002 (the buyers' locks are always taken before the type's counter lock,
-- in every batch), and bought grows by what was finally sold, after a sell-out withdrew the
-- batch's last purchases. Unlimited types skip all of this and cost what they cost before.
-- +goose StatementBegin
CREATE FUNCTION purchase_tickets_limited(
    p_type uuid, p_event uuid, p_organizer uuid,
    p_ids uuid[], p_codes text[], p_users uuid[], p_ats timestamptz[],
    p_topic text, p_key text, p_payloads bytea[],
    p_idempotency_keys text[], p_request_hashes bytea[], p_responses bytea[],
    OUT sold uuid[], OUT over_limit uuid[]
) LANGUAGE plpgsql AS $$
DECLARE
    v_keep   uuid[];
    v_outbox bigint[];
    v_left   integer;
    v_limit  integer;
BEGIN
    sold := '{}';
    over_limit := '{}';

    INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at)
    SELECT x.id, x.code, p_event, p_type, x.u, p_organizer, 'active', x.at
    FROM unnest(p_ids, p_codes, p_users, p_ats) AS x(id, code, u, at);

    WITH recorded AS (
        INSERT INTO purchase_requests (user_id, idempotency_key, request_hash, ticket_id, response)
        SELECT x.u, x.k, x.h, x.id, x.r
        FROM unnest(p_users, p_idempotency_keys, p_request_hashes, p_ids, p_responses) AS x(u, k, h, id, r)
        WHERE x.k <> ''
        ON CONFLICT (user_id, idempotency_key) DO NOTHING
        RETURNING ticket_id
    )
    SELECT array_agg(x.id ORDER BY x.n) INTO v_keep
    FROM unnest(p_ids, p_idempotency_keys) WITH ORDINALITY AS x(id, k, n)
    WHERE x.k = '' OR x.id IN (SELECT ticket_id FROM recorded);

    IF v_keep IS NULL THEN
        DELETE FROM tickets WHERE id = ANY (p_ids);
        RETURN;
    END IF;
    IF cardinality(v_keep) < cardinality(p_ids) THEN
        DELETE FROM tickets WHERE id = ANY (p_ids) AND id <> ALL (v_keep);
    END IF;

    -- A type's max_per_user never changes: a plain read is enough.
    SELECT max_per_user INTO v_limit FROM ticket_types WHERE id = p_type;
    IF v_limit IS NOT NULL THEN
        WITH locked AS (
            INSERT INTO ticket_type_buyers (ticket_type_id, user_id, max_per_user, bought)
            SELECT p_type, b.u, v_limit, 0
            FROM (SELECT DISTINCT x.u FROM unnest(p_ids, p_users) AS x(id, u) WHERE x.id = ANY (v_keep)) b
            ORDER BY b.u
            ON CONFLICT (ticket_type_id, user_id) DO UPDATE SET bought = ticket_type_buyers.bought
            RETURNING user_id, bought
        ), wanted AS (
            SELECT x.id, x.u, x.n, row_number() OVER (PARTITION BY x.u ORDER BY x.n) AS k
            FROM unnest(p_ids, p_users) WITH ORDINALITY AS x(id, u, n)
            WHERE x.id = ANY (v_keep)
        )
        SELECT array_agg(w.id ORDER BY w.n) FILTER (WHERE w.k <= v_limit - l.bought),
               coalesce(array_agg(w.id ORDER BY w.n) FILTER (WHERE w.k > v_limit - l.bought), '{}')
        INTO v_keep, over_limit
        FROM wanted w JOIN locked l ON l.user_id = w.u;

        IF cardinality(over_limit) > 0 THEN
            DELETE FROM purchase_requests WHERE ticket_id = ANY (over_limit);
            DELETE FROM tickets WHERE id = ANY (over_limit);
        END IF;
        IF v_keep IS NULL THEN
            RETURN;
        END IF;
    END IF;

    -- One outbox row per ticket, in ticket order: identity values are drawn in insertion
    -- order, so the sorted ids line up with v_keep.
    WITH queued AS (
        INSERT INTO outbox (topic, key, payload)
        SELECT p_topic, p_key, x.payload
        FROM unnest(p_ids, p_payloads) WITH ORDINALITY AS x(id, payload, n)
        WHERE x.id = ANY (v_keep)
        ORDER BY x.n
        RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO v_outbox FROM queued;

    SELECT quantity - ticket_types.sold INTO v_left FROM ticket_types
    WHERE id = p_type AND event_id = p_event AND event_cancelled_at IS NULL
      AND sales_start <= now() AND now() < sales_end
    FOR NO KEY UPDATE;
    IF NOT FOUND OR v_left <= 0 THEN
        RAISE EXCEPTION 'no ticket of type % can be sold now', p_type USING ERRCODE = 'SB409';
    END IF;
    IF v_left < cardinality(v_keep) THEN
        DELETE FROM purchase_requests WHERE ticket_id = ANY (v_keep[v_left + 1:]);
        DELETE FROM tickets WHERE id = ANY (v_keep[v_left + 1:]);
        DELETE FROM outbox WHERE id = ANY (v_outbox[v_left + 1:]);
        v_keep := v_keep[1:v_left];
    END IF;
    UPDATE ticket_types SET sold = ticket_types.sold + cardinality(v_keep) WHERE id = p_type;

    IF v_limit IS NOT NULL THEN
        UPDATE ticket_type_buyers b SET bought = b.bought + c.n
        FROM (SELECT x.u, count(*) AS n FROM unnest(p_ids, p_users) AS x(id, u) WHERE x.id = ANY (v_keep) GROUP BY x.u) c
        WHERE b.ticket_type_id = p_type AND b.user_id = c.u;
    END IF;
    sold := v_keep;
END;
$$;
-- +goose StatementEnd

-- The earlier entry points now enforce the limit too, so a replica of the previous version
-- during a rolling update can never sell past it (it answers those purchases sold_out).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION purchase_tickets(
    p_type uuid, p_event uuid, p_organizer uuid,
    p_ids uuid[], p_codes text[], p_users uuid[], p_ats timestamptz[],
    p_topic text, p_key text, p_payloads bytea[],
    p_idempotency_keys text[], p_request_hashes bytea[], p_responses bytea[]
) RETURNS uuid[] LANGUAGE sql AS $$
    SELECT sold FROM purchase_tickets_limited(p_type, p_event, p_organizer, p_ids, p_codes, p_users, p_ats,
        p_topic, p_key, p_payloads, p_idempotency_keys, p_request_hashes, p_responses);
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION purchase_ticket(
    p_type uuid, p_event uuid, p_organizer uuid, p_ticket uuid, p_code text, p_user uuid, p_at timestamptz,
    p_topic text, p_key text, p_payload bytea,
    p_idempotency_key text, p_request_hash bytea, p_response bytea
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality((purchase_tickets_limited(p_type, p_event, p_organizer, ARRAY[p_ticket], ARRAY[p_code], ARRAY[p_user],
            ARRAY[p_at], p_topic, p_key, ARRAY[p_payload], ARRAY[p_idempotency_key], ARRAY[p_request_hash],
            ARRAY[p_response])).sold) = 0 THEN
        RAISE EXCEPTION 'no ticket of type % can be sold now', p_type USING ERRCODE = 'SB409';
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- purchase_tickets and purchase_ticket are put back as 00002 and 00001 left them.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION purchase_ticket(
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
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION purchase_tickets(
    p_type uuid, p_event uuid, p_organizer uuid,
    p_ids uuid[], p_codes text[], p_users uuid[], p_ats timestamptz[],
    p_topic text, p_key text, p_payloads bytea[],
    p_idempotency_keys text[], p_request_hashes bytea[], p_responses bytea[]
) RETURNS uuid[] LANGUAGE plpgsql AS $$
DECLARE
    v_keep   uuid[];
    v_outbox bigint[];
    v_left   integer;
BEGIN
    INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at)
    SELECT x.id, x.code, p_event, p_type, x.u, p_organizer, 'active', x.at
    FROM unnest(p_ids, p_codes, p_users, p_ats) AS x(id, code, u, at);

    WITH recorded AS (
        INSERT INTO purchase_requests (user_id, idempotency_key, request_hash, ticket_id, response)
        SELECT x.u, x.k, x.h, x.id, x.r
        FROM unnest(p_users, p_idempotency_keys, p_request_hashes, p_ids, p_responses) AS x(u, k, h, id, r)
        WHERE x.k <> ''
        ON CONFLICT (user_id, idempotency_key) DO NOTHING
        RETURNING ticket_id
    )
    SELECT array_agg(x.id ORDER BY x.n) INTO v_keep
    FROM unnest(p_ids, p_idempotency_keys) WITH ORDINALITY AS x(id, k, n)
    WHERE x.k = '' OR x.id IN (SELECT ticket_id FROM recorded);

    IF v_keep IS NULL THEN
        DELETE FROM tickets WHERE id = ANY (p_ids);
        RETURN '{}';
    END IF;
    IF cardinality(v_keep) < cardinality(p_ids) THEN
        DELETE FROM tickets WHERE id = ANY (p_ids) AND id <> ALL (v_keep);
    END IF;

    WITH queued AS (
        INSERT INTO outbox (topic, key, payload)
        SELECT p_topic, p_key, x.payload
        FROM unnest(p_ids, p_payloads) WITH ORDINALITY AS x(id, payload, n)
        WHERE x.id = ANY (v_keep)
        ORDER BY x.n
        RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO v_outbox FROM queued;

    SELECT quantity - sold INTO v_left FROM ticket_types
    WHERE id = p_type AND event_id = p_event AND event_cancelled_at IS NULL
      AND sales_start <= now() AND now() < sales_end
    FOR NO KEY UPDATE;
    IF NOT FOUND OR v_left <= 0 THEN
        RAISE EXCEPTION 'no ticket of type % can be sold now', p_type USING ERRCODE = 'SB409';
    END IF;
    IF v_left < cardinality(v_keep) THEN
        DELETE FROM purchase_requests WHERE ticket_id = ANY (v_keep[v_left + 1:]);
        DELETE FROM tickets WHERE id = ANY (v_keep[v_left + 1:]);
        DELETE FROM outbox WHERE id = ANY (v_outbox[v_left + 1:]);
        v_keep := v_keep[1:v_left];
    END IF;
    UPDATE ticket_types SET sold = sold + cardinality(v_keep) WHERE id = p_type;
    RETURN v_keep;
END;
$$;
-- +goose StatementEnd
DROP FUNCTION purchase_tickets_limited;
DROP INDEX tickets_transferred_from_key;
ALTER TABLE tickets
    DROP CONSTRAINT tickets_transferred_revoked,
    DROP CONSTRAINT tickets_transferred_at,
    DROP COLUMN transferred_from,
    DROP COLUMN transferred_at,
    DROP CONSTRAINT tickets_status_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_status_check CHECK (status IN ('active', 'used', 'cancelled'));
DROP TABLE ticket_type_buyers;
ALTER TABLE ticket_types DROP CONSTRAINT ticket_types_max_per_user_check, DROP COLUMN max_per_user;
