WITH gone AS (
    DELETE FROM {deliveries} WHERE id = $1::int8 AND lease = $2::int8
    RETURNING id, event_id, emit_id, emitted_at, payload, trace, version, listener, attempt
)
INSERT INTO {dead_letters} (id, event_id, emit_id, emitted_at, payload, trace, version, listener, attempts, reason, failed_at)
-- A corrupt row's negative attempt count (see `claim`) is kept as 0.
SELECT id, event_id, emit_id, emitted_at, payload, trace, version, listener, greatest(attempt, 0), $3::text, now()
FROM gone
