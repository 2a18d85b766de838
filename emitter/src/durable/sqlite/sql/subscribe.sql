INSERT INTO emitter_subscriptions (event_id, listener, concurrency, seen_at)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (event_id, listener) DO UPDATE
SET concurrency = excluded.concurrency, seen_at = excluded.seen_at
