-- Delivery or dead letter $1 in full, with its state now.
SELECT id, listener, event_id, emit_id::text AS emit_id, emitted_at, run_at AS due,
       attempt AS attempts, worker, last_error AS error, payload, trace,
       CASE WHEN lease_until > now() THEN 'running'
            WHEN run_at > now() THEN 'scheduled'
            ELSE 'waiting' END AS state
FROM {deliveries} WHERE id = $1::int8
UNION ALL
SELECT id, listener, event_id, emit_id::text, emitted_at, failed_at, attempts, NULL, reason,
       payload, trace, 'dead'
FROM {dead_letters} WHERE id = $1::int8
