-- A page of the dead letters (of listener `?1` when given) by failure time, after the cursor
-- (`?3` failure time, `?4` id), failed from `?5` and before `?6`; otherwise as `waiting.sql`
-- (`?2` is not used).
SELECT id, listener, event_id, emit_id, emitted_at, failed_at, attempts, NULL, reason, failed_at
FROM emitter_dead_letters INDEXED BY emitter_dead_letters_failed
WHERE (failed_at, id) > (?3, ?4) AND failed_at >= ?5 AND failed_at < ?6
  AND (?1 IS NULL OR listener = ?1)
  AND (?8 IS NULL OR event_id = ?8) AND (?9 IS NULL OR emit_id = ?9)
ORDER BY failed_at, id
LIMIT ?7
