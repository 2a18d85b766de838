-- Per listener: its deliveries leased and not expired; `?1` now.
SELECT listener, count(*)
FROM emitter_deliveries INDEXED BY emitter_deliveries_suspects
WHERE lease IS NOT NULL AND (lease IS NOT NULL OR crashes > 0) AND run_at > ?1
GROUP BY listener
