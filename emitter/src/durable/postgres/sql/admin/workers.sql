SELECT worker, listener, seen_at, expires_at FROM {workers}
WHERE expires_at > now()
ORDER BY worker, listener
