DELETE FROM emitter_deliveries WHERE id = ?1 AND lease = ?2
