-- Gives up to `?3` of listener `?1`'s dead letters to listener `?4` (`?2` is not used).
UPDATE emitter_dead_letters SET listener = ?4 WHERE id IN (
    SELECT id FROM emitter_dead_letters WHERE listener = ?1 LIMIT ?3
)
