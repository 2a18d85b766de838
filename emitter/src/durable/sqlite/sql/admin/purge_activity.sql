DELETE FROM emitter_activity WHERE minute < ?1
