-- +goose Up

-- Stored signatures: the Ed25519 signature of each ticket's signed code (issue 10,
-- internal/platform/ticketsig) is written with the ticket, and showing a ticket assembles its
-- signed code from it instead of signing again. Signing costs about 40 µs of CPU here, and a
-- page of 20 tickets was signed on every read: GET /api/tickets cost the service 1.3 ms of
-- CPU a page, two thirds of it signing (issue 7). Ed25519 signatures are deterministic and an
-- event's key never changes (00004), so a stored signature is exactly what signing again would
-- give. It is not secret: it is in the code the holder is shown. Tickets written before this
-- migration, or by a replica of the previous version during a rolling update, have none and
-- are signed when shown, as before.
ALTER TABLE tickets ADD COLUMN signature bytea;
-- NOT VALID: existing rows are all NULL, and validating would scan the table under its lock.
ALTER TABLE tickets ADD CONSTRAINT tickets_signature_length CHECK (octet_length(signature) = 64) NOT VALID;

-- purchase_tickets_signed is purchase_tickets_limited (00005) with each ticket's signature,
-- in p_signatures (one per ticket, in p_ids order). purchase_tickets_limited stays as it was
-- for replicas of the previous version during a rolling update; a later migration drops it.
-- +goose StatementBegin
CREATE FUNCTION purchase_tickets_signed(
    p_type uuid, p_event uuid, p_organizer uuid,
    p_ids uuid[], p_codes text[], p_users uuid[], p_ats timestamptz[],
    p_topic text, p_key text, p_payloads bytea[],
    p_idempotency_keys text[], p_request_hashes bytea[], p_responses bytea[], p_signatures bytea[],
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

    INSERT INTO tickets (id, code, event_id, ticket_type_id, user_id, organizer_id, status, purchased_at, signature)
    SELECT x.id, x.code, p_event, p_type, x.u, p_organizer, 'active', x.at, x.sig
    FROM unnest(p_ids, p_codes, p_users, p_ats, p_signatures) AS x(id, code, u, at, sig);

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

-- +goose Down
DROP FUNCTION purchase_tickets_signed;
ALTER TABLE tickets DROP COLUMN signature;
