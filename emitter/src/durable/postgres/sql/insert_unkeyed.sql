-- The insert of a batch without idempotency keys: `insert.sql` without the keys' work.
WITH stored AS (
    INSERT INTO {deliveries} (event_id, emit_id, emitted_at, payload, trace, version, listener,
                              run_at, first_due)
    SELECT e.event_id, e.emit_id::uuid, e.emitted_at, e.payload, e.trace, e.version, l.listener,
           now() + e.due_in * interval '1 millisecond',
           -- An emit due now first becomes due when it is stored: `now()`, not `run_at` (which
           -- carries how late the batch reached the server, and so could put a delivery of one
           -- batch before one of the batch stored before it, for listeners taken in this order).
           now() + greatest(e.due_in, 0) * interval '1 millisecond'
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[], $5::int8[], $8::text[],
                $9::int4[])
        WITH ORDINALITY AS e(event_id, emit_id, emitted_at, payload, due_in, trace, version, n)
    JOIN unnest($6::int8[], $7::text[]) WITH ORDINALITY AS l(n, listener, position)
        ON l.n = e.n
    ORDER BY l.position
    RETURNING 1
)
SELECT cardinality($1::text[])::int8 AS stored,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM stored)) AS woken) AS woken
