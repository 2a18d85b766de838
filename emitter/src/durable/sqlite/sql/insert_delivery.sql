INSERT INTO emitter_deliveries
(listener, event_id, emit_id, emitted_at, payload, run_at, attempt)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
