UPDATE emitter_deliveries SET run_at = ?3 WHERE id = ?1 AND lease = ?2
