SELECT worker, listener, seen_at, expires_at FROM emitter_workers
WHERE expires_at > ?1
ORDER BY worker, listener
