SELECT event_id, listener, concurrency, seen_at, version
FROM emitter_subscriptions
ORDER BY event_id, listener
