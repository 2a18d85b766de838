DELETE FROM emitter_keys WHERE expires_at <= ?1
