-- Replays up to $6 dead letters that failed from $1 and before $2, of listener $3, event $4 and
-- emit $5 when given, as `replay.sql` replays one; counts them, and wakes the workers.
WITH picked AS (
    SELECT id FROM {dead_letters}
    WHERE failed_at >= $1::timestamptz AND failed_at < $2::timestamptz
      AND ($3::text IS NULL OR listener = $3::text)
      AND ($4::text IS NULL OR event_id = $4::text)
      AND ($5::text IS NULL OR emit_id = $5::text::uuid)
    ORDER BY failed_at, id
    LIMIT $6::int8
    FOR UPDATE SKIP LOCKED
),
back AS (
    DELETE FROM {dead_letters} AS d USING picked WHERE d.id = picked.id
    RETURNING d.id, d.event_id, d.emit_id, d.emitted_at, d.payload, d.trace, d.version, d.listener,
              d.reason, d.failed_at
),
stored AS (
    INSERT INTO {deliveries} (id, event_id, emit_id, emitted_at, payload, trace, version, listener,
                              attempt,
                              run_at, first_due, last_error)
    SELECT id, event_id, emit_id, emitted_at, payload, trace, version, listener, 0, now(), now(), reason
    FROM back ORDER BY failed_at, id
    RETURNING id
)
SELECT (SELECT count(*) FROM stored) AS replayed,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM stored)) AS w) AS woken
