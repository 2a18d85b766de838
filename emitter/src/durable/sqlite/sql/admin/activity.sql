SELECT minute, listener, delivered, failed, retried FROM emitter_activity
WHERE minute >= ?1
ORDER BY minute, listener
