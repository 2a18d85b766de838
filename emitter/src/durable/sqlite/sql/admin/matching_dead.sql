-- The next `?7` dead letters after id `?1` that failed from `?2` and before `?3`, of listener
-- `?4`, event `?5` and emit `?6` when given.
SELECT id FROM emitter_dead_letters
WHERE id > ?1 AND failed_at >= ?2 AND failed_at < ?3
  AND (?4 IS NULL OR listener = ?4) AND (?5 IS NULL OR event_id = ?5)
  AND (?6 IS NULL OR emit_id = ?6)
ORDER BY id
LIMIT ?7
