-- Up to `?3` of listener `?1`'s deliveries that are not running (`?2` now).
DELETE FROM emitter_deliveries WHERE id IN (
    SELECT id FROM emitter_deliveries INDEXED BY emitter_deliveries_due
    WHERE listener = ?1 AND NOT (lease IS NOT NULL AND run_at > ?2)
    LIMIT ?3
)
