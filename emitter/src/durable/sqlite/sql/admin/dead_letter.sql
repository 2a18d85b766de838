-- Dead letter `?1` in full, in the columns of `delivery.sql`.
SELECT id, listener, event_id, emit_id, emitted_at, failed_at, attempts, NULL, reason, 0,
       payload, trace
FROM emitter_dead_letters WHERE id = ?1
