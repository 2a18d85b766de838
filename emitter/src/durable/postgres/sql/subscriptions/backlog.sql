-- The unfinished deliveries per listener and event id.
SELECT listener, event_id, count(*) AS unfinished
FROM {deliveries}
GROUP BY listener, event_id
ORDER BY listener, event_id
