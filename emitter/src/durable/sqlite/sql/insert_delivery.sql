INSERT INTO emitter_deliveries
(listener, event_id, emit_id, emitted_at, payload, trace, run_at, first_due, attempt, version)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, ?8)
