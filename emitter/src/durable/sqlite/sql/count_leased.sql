SELECT COUNT(*) FROM emitter_deliveries WHERE lease IS NOT NULL AND run_at > ?1
