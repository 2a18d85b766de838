INSERT INTO emitter_deliveries
(id, listener, event_id, emit_id, emitted_at, payload, run_at, attempt, last_error)
SELECT id, listener, event_id, emit_id, emitted_at, payload, ?2, 0, reason
FROM emitter_dead_letters WHERE id = ?1
