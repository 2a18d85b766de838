-- Per listener: its deliveries, those due (waiting: a leased delivery's `run_at` is its lease's
-- expiry, so a due one is not leased or its lease ran out), and since when the first of those is
-- due; `?1` now. Read from the `(listener, run_at)` index alone.
SELECT listener, count(*), count(*) FILTER (WHERE run_at <= ?1), min(run_at) FILTER (WHERE run_at <= ?1)
FROM emitter_deliveries INDEXED BY emitter_deliveries_due
GROUP BY listener
