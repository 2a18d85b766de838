INSERT INTO emitter_dead_letters
(id, listener, event_id, emit_id, emitted_at, payload, trace, version, attempts, reason, failed_at)
SELECT id, listener, event_id, emit_id, emitted_at, payload, trace, version, attempt, ?3, ?4
FROM emitter_deliveries WHERE id = ?1 AND lease = ?2
