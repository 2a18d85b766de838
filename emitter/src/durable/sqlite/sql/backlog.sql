SELECT listener, event_id, count(*)
FROM emitter_deliveries
GROUP BY listener, event_id
ORDER BY listener, event_id
