SELECT listener, event_id, version, count(*)
FROM emitter_deliveries
GROUP BY listener, event_id, version
ORDER BY listener, event_id, version
