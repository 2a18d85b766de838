INSERT INTO emitter_keys (key, expires_at) VALUES (?1, ?2)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
WHERE emitter_keys.expires_at <= ?3
