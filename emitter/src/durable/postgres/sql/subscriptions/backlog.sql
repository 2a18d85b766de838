-- The unfinished deliveries per listener, event id and event version.
SELECT listener, event_id, version, count(*) AS unfinished
FROM {deliveries}
GROUP BY listener, event_id, version
ORDER BY listener, event_id, version
