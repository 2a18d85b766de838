WITH gone AS (
    DELETE FROM {deliveries} WHERE id = $1::int8 AND lease = $2::int8
    RETURNING id, event_id, emit_id, emitted_at, payload, listener, attempt
)
INSERT INTO {dead_letters} (id, event_id, emit_id, emitted_at, payload, listener, attempts, reason, failed_at)
SELECT id, event_id, emit_id, emitted_at, payload, listener, attempt, $3::text, now() FROM gone
