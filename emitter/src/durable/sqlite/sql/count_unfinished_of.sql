SELECT COUNT(*) FROM emitter_deliveries WHERE emit_id BETWEEN ?1 AND ?2
