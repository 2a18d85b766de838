INSERT INTO emitter_paused (listener, since) VALUES (?1, ?2) ON CONFLICT (listener) DO NOTHING
