-- Per listener: its deliveries leased and not expired; `?1` now.
SELECT listener, count(*)
FROM emitter_deliveries INDEXED BY emitter_deliveries_leased
WHERE lease IS NOT NULL AND run_at > ?1
GROUP BY listener
