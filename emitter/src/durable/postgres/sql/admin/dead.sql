-- A page of the dead letters by failure time, after the cursor ($2 failure time, $3 id), failed
-- from $4 and before $5: a range of `dead_letters_failed`. Otherwise as `waiting.sql`.
SELECT id, listener, event_id, emit_id::text AS emit_id, emitted_at, failed_at AS due,
       attempts, NULL::text AS worker, reason AS error, failed_at AS key
FROM {dead_letters}
WHERE (failed_at, id) > ($2::timestamptz, $3::int8)
  AND failed_at >= $4::timestamptz AND failed_at < $5::timestamptz
  AND ($1::text IS NULL OR listener = $1::text)
  AND ($7::text IS NULL OR event_id = $7::text)
  AND ($8::text IS NULL OR emit_id = $8::text::uuid)
ORDER BY failed_at, id
LIMIT $6::int8
