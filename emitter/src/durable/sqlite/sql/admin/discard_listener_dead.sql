-- Up to `?3` of listener `?1`'s dead letters (`?2` is not used).
DELETE FROM emitter_dead_letters WHERE id IN (
    SELECT id FROM emitter_dead_letters WHERE listener = ?1 LIMIT ?3
)
