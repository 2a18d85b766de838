-- The due deliveries among the first $2 unfinished ones of listener $1 (a listener with a
-- concurrency limit, not paused), in emit order, at most $3, suspects excepted (`claim_suspect.sql`
-- takes those), leased to worker $5 for $4 ms.
--
-- The first $2 are locked, not skipped when locked: claimers of one listener take turns, and
-- each sees the window as the one before left it. A row changed meanwhile (leased by the claimer
-- before, or acknowledged) is read as it is now; the update checks again that it is claimable.
WITH window_rows AS (
    SELECT id, run_at, lease, crashes, first_due FROM {deliveries}
    WHERE listener = $1::text AND first_due <= now()
      AND NOT EXISTS (SELECT 1 FROM {paused} WHERE listener = $1::text)
    ORDER BY first_due, id
    LIMIT $2::int8
    FOR UPDATE
),
due AS (
    SELECT id, run_at FROM window_rows
    WHERE run_at <= now() AND lease IS NULL AND crashes = 0
    ORDER BY first_due, id
    LIMIT $3::int8
)
UPDATE {deliveries} AS d
SET attempt = d.attempt + 1,
    lease = nextval('{leases}'::regclass),
    worker = $5::text,
    lease_until = now() + $4::int8 * interval '1 millisecond',
    run_at = now() + $4::int8 * interval '1 millisecond'
FROM due
WHERE d.id = due.id AND d.run_at <= now() AND d.lease IS NULL AND d.crashes = 0
RETURNING d.id, d.lease, d.attempt, d.crashes, due.run_at AS due, d.listener, d.event_id,
          d.emit_id::text AS emit_id, d.emitted_at, d.payload, d.trace, d.version
