INSERT INTO {paused} (listener, since) VALUES ($1::text, now())
ON CONFLICT (listener) DO NOTHING
RETURNING listener
