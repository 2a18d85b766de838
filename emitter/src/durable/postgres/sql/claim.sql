-- The oldest due deliveries of listeners $1, at most $2, suspects excepted (`claim_suspect.sql`
-- takes those), leased to worker $4 for $3 ms.
WITH due AS (
    SELECT id, run_at FROM {deliveries}
    WHERE run_at <= now() AND lease IS NULL AND crashes = 0
      AND listener = ANY($1::text[])
      AND listener <> ALL(ARRAY(SELECT listener FROM {paused}))
    ORDER BY run_at, id
    LIMIT $2::int8
    FOR UPDATE SKIP LOCKED
)
UPDATE {deliveries} AS d
SET attempt = d.attempt + 1,
    lease = nextval('{leases}'::regclass),
    worker = $4::text,
    lease_until = now() + $3::int8 * interval '1 millisecond',
    run_at = now() + $3::int8 * interval '1 millisecond'
FROM due
WHERE d.id = due.id
RETURNING d.id, d.lease, d.attempt, d.crashes, due.run_at AS due, d.listener, d.event_id,
          d.emit_id::text AS emit_id, d.emitted_at, d.payload, d.trace, d.version
