-- +goose Up

-- purchase_tickets is a batch of purchases of one type as one statement (SELECT
-- purchase_tickets(...)): the grouping that lets one durable commit sell many tickets
-- (batch.go). It returns the ids of the tickets sold, in the order they were given; the
-- others were not sold:
--   - a purchase with an Idempotency-Key that another request recorded first (committed, or
--     committing: ON CONFLICT waits for it) loses its ticket; the caller replays that
--     request's record instead;
--   - when fewer tickets are left than the batch asks for, the first ones sell and the rest
--     are withdrawn (sold out);
--   - when the counter refuses outright (sold out, sales window shut, event cancelled, no
--     such type) the function raises SB409 and the whole statement rolls back.
-- As in purchase_ticket (00001), the rows are written first and the counter last, so its row
-- lock — what every buyer of the type, on every replica, queues for — is held only from the
-- counter's SELECT ... FOR NO KEY UPDATE to the commit. Under READ COMMITTED that SELECT
-- waits for the lock and then reads the row's latest version, so the guard sees every sale
-- and a cancellation committed before it. The ticket_types CHECK (sold <= quantity) stays as
-- the backstop. purchase_ticket is kept for replicas of the previous version during a
-- rolling update.
-- +goose StatementBegin
CREATE FUNCTION purchase_tickets(
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

-- +goose Down
DROP FUNCTION purchase_tickets;
