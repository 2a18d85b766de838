-- Every subscription, in (event id, listener) order.
SELECT event_id, listener, concurrency, version, seen_at
FROM {subscriptions}
ORDER BY event_id, listener
