INSERT INTO emitter_subscriptions (event_id, listener, concurrency, version, seen_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (event_id, listener) DO UPDATE
SET concurrency = excluded.concurrency, version = excluded.version, seen_at = excluded.seen_at
