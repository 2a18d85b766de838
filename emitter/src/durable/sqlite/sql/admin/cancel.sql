-- Deletes delivery `?1` unless it is leased and its lease runs at `?2` (now).
DELETE FROM emitter_deliveries WHERE id = ?1 AND NOT (lease IS NOT NULL AND run_at > ?2)
