UPDATE emitter_deliveries
SET attempt = attempt + 1, crashes = crashes + (lease IS NOT NULL), lease = ?1, worker = ?2,
    run_at = ?3
WHERE id IN (SELECT id FROM ({due}) ORDER BY run_at, id LIMIT ?5)
RETURNING id, listener, attempt, crashes, event_id, emit_id, emitted_at, payload, trace, version
