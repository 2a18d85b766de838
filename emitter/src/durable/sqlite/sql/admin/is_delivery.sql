SELECT count(*) FROM emitter_deliveries WHERE id = ?1
