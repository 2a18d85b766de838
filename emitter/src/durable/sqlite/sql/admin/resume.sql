DELETE FROM emitter_paused WHERE listener = ?1
