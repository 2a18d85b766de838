-- A page of the running deliveries (leased, not expired; of listener `?1` when given) by when
-- their lease runs out, after the cursor; parameters as in `waiting.sql`. A range of the partial
-- index of leased deliveries and suspects (its condition repeated, for SQLite to use it).
SELECT id, listener, event_id, emit_id, emitted_at, run_at, attempt, worker, last_error, run_at
FROM emitter_deliveries INDEXED BY emitter_deliveries_suspects
WHERE lease IS NOT NULL AND (lease IS NOT NULL OR crashes > 0) AND (run_at, id) > (?3, ?4) AND run_at > ?2
  AND run_at >= ?5 AND run_at < ?6 AND (?1 IS NULL OR listener = ?1)
  AND (?8 IS NULL OR event_id = ?8) AND (?9 IS NULL OR emit_id = ?9)
ORDER BY run_at, id
LIMIT ?7
