INSERT INTO emitter_workers (worker, listener, seen_at, expires_at) VALUES (?1, ?2, ?3, ?4)
