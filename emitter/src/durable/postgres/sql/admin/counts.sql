-- Per listener: its deliveries by state, and since when its waiting delivery that is due the
-- longest is due (a leased delivery's `run_at` is its lease's expiry, so a due one is not leased
-- or its lease ran out); with its dead letters.
WITH live AS (
    SELECT listener,
           count(*) FILTER (WHERE run_at <= now()) AS waiting,
           count(*) FILTER (WHERE run_at > now() AND (lease_until IS NULL OR lease_until <= now()))
               AS scheduled,
           count(*) FILTER (WHERE lease_until > now()) AS running,
           min(run_at) FILTER (WHERE run_at <= now()) AS oldest
    FROM {deliveries} GROUP BY listener
),
dead AS (
    SELECT listener, count(*) AS dead FROM {dead_letters} GROUP BY listener
)
SELECT listener, coalesce(live.waiting, 0) AS waiting, coalesce(live.scheduled, 0) AS scheduled,
       coalesce(live.running, 0) AS running, coalesce(dead.dead, 0) AS dead, live.oldest
FROM live FULL JOIN dead USING (listener)
ORDER BY listener
