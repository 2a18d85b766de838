SELECT minute, listener, delivered, failed, retried FROM {activity}
WHERE minute >= $1::timestamptz
ORDER BY minute, listener
