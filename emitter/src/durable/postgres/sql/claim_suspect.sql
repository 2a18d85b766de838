-- The oldest due suspect of listeners $1 that are not paused (a delivery whose lease ran out, or with such a claim
-- since its last failed attempt), alone, leased to worker $3 for $2 ms: through the index of
-- suspects, whose range of due rows holds only suspects however long the backlog.
WITH due AS (
    SELECT id, run_at FROM {deliveries}
    WHERE (lease IS NOT NULL OR crashes > 0) AND run_at <= now()
      AND listener = ANY($1::text[])
      AND listener <> ALL(ARRAY(SELECT listener FROM {paused}))
    ORDER BY run_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE {deliveries} AS d
SET attempt = d.attempt + 1,
    crashes = d.crashes + (d.lease IS NOT NULL)::int,
    lease = nextval('{leases}'::regclass),
    worker = $3::text,
    lease_until = now() + $2::int8 * interval '1 millisecond',
    run_at = now() + $2::int8 * interval '1 millisecond'
FROM due
WHERE d.id = due.id
RETURNING d.id, d.lease, d.attempt, d.crashes, due.run_at AS due, d.listener, d.event_id,
          d.emit_id::text AS emit_id, d.emitted_at, d.payload, d.trace, d.version
