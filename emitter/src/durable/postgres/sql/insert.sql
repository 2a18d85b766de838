WITH emits AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[],
                         $5::int8[], $6::text[], $10::text[], $11::int4[])
        WITH ORDINALITY AS e(event_id, emit_id, emitted_at, payload, due_in, key, trace, version,
                             n)
),
first_keys AS (
    SELECT DISTINCT ON (key) key, n FROM emits WHERE key IS NOT NULL ORDER BY key, n
),
new_keys AS (
    INSERT INTO {keys} AS old (key, expires_at)
    SELECT key, now() + $9::int8 * interval '1 millisecond' FROM first_keys
    ORDER BY key
    ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
        WHERE old.expires_at <= now()
    RETURNING key
),
accepted AS (
    SELECT e.* FROM emits AS e
    WHERE e.key IS NULL
       OR e.n IN (SELECT f.n FROM first_keys AS f JOIN new_keys USING (key))
),
stored AS (
    INSERT INTO {deliveries} (event_id, emit_id, emitted_at, payload, trace, version, listener,
                              run_at, first_due)
    SELECT a.event_id, a.emit_id::uuid, a.emitted_at, a.payload, a.trace, a.version, l.listener,
           now() + a.due_in * interval '1 millisecond',
           -- An emit due now first becomes due when it is stored: `now()`, not `run_at` (which
           -- carries how late the batch reached the server, and so could put a delivery of one
           -- batch before one of the batch stored before it, for listeners taken in this order).
           now() + greatest(a.due_in, 0) * interval '1 millisecond'
    FROM accepted AS a
    JOIN unnest($7::int8[], $8::text[]) WITH ORDINALITY AS l(n, listener, position)
        ON l.n = a.n
    ORDER BY l.position
    RETURNING 1
)
SELECT (SELECT count(*) FROM accepted) AS stored,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM stored)) AS woken) AS woken
