UPDATE emitter_deliveries
SET run_at = ?3, lease = NULL, worker = NULL, attempt = max(attempt - 1, 0)
WHERE id = ?1 AND lease = ?2
