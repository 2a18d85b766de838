-- A page of the running deliveries (leased, not expired: their `run_at` is the lease's expiry)
-- by when their lease runs out, after the cursor: a range of `deliveries_due`. Parameters as in
-- `waiting.sql`.
SELECT id, listener, event_id, emit_id::text AS emit_id, emitted_at, run_at AS due,
       attempt AS attempts, worker, last_error AS error, run_at AS key
FROM {deliveries}
WHERE (run_at, id) > ($2::timestamptz, $3::int8) AND run_at > now() AND lease_until > now()
  AND run_at >= $4::timestamptz AND run_at < $5::timestamptz
  AND ($1::text IS NULL OR listener = $1::text)
  AND ($7::text IS NULL OR event_id = $7::text)
  AND ($8::text IS NULL OR emit_id = $8::text::uuid)
ORDER BY run_at, id
LIMIT $6::int8
