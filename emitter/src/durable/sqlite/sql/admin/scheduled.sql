-- A page of listener `?1`'s scheduled deliveries (due later, not leased) by due time, after the
-- cursor (`?3` due time, `?4` id); parameters as in `waiting.sql`. One range of
-- `emitter_deliveries_due` (whose last column is the row id).
SELECT id, listener, event_id, emit_id, emitted_at, run_at, attempt, NULL, last_error, run_at
FROM emitter_deliveries INDEXED BY emitter_deliveries_due
WHERE listener = ?1 AND (run_at, id) > (?3, ?4) AND run_at > ?2 AND lease IS NULL
  AND run_at >= ?5 AND run_at < ?6
  AND (?8 IS NULL OR event_id = ?8) AND (?9 IS NULL OR emit_id = ?9)
ORDER BY run_at, id
LIMIT ?7
