INSERT INTO emitter_deliveries
(id, listener, event_id, emit_id, emitted_at, payload, trace, version, run_at, first_due, attempt, last_error)
SELECT id, listener, event_id, emit_id, emitted_at, payload, trace, version, ?2, ?2, 0, reason
FROM emitter_dead_letters WHERE id = ?1
