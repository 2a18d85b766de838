WITH back AS (
    DELETE FROM {dead_letters} WHERE id = $1::int8
    RETURNING id, event_id, emit_id, emitted_at, payload, trace, version, listener, reason
),
stored AS (
    INSERT INTO {deliveries} (id, event_id, emit_id, emitted_at, payload, trace, version, listener,
                              attempt,
                              run_at, first_due, last_error)
    SELECT id, event_id, emit_id, emitted_at, payload, trace, version, listener, 0, now(), now(), reason
    FROM back
    RETURNING id
)
SELECT (SELECT count(*) FROM stored) AS replayed,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM stored)) AS w) AS woken
