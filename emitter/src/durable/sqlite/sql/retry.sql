UPDATE emitter_deliveries
SET run_at = ?3, last_error = ?4, lease = NULL, worker = NULL, crashes = 0
WHERE id = ?1 AND lease = ?2
