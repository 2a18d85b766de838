SELECT id, listener, attempts, reason, failed_at,
event_id, emit_id, emitted_at, payload, trace, version
FROM emitter_dead_letters ORDER BY failed_at, id LIMIT ?1
