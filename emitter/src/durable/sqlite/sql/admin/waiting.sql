-- A page of listener `?1`'s waiting deliveries in emit order, after the cursor (`?3` first due,
-- `?4` id), due from `?5` and before `?6`, of event `?8` and emit `?9` when given; at most `?7`;
-- `?2` now. One range of `emitter_deliveries_order`.
SELECT id, listener, event_id, emit_id, emitted_at, run_at, attempt, NULL, last_error, first_due
FROM emitter_deliveries INDEXED BY emitter_deliveries_order
WHERE listener = ?1 AND (first_due, id) > (?3, ?4) AND run_at <= ?2
  AND run_at >= ?5 AND run_at < ?6
  AND (?8 IS NULL OR event_id = ?8) AND (?9 IS NULL OR emit_id = ?9)
ORDER BY first_due, id
LIMIT ?7
