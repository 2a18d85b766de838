SELECT count(*) FROM emitter_dead_letters WHERE id = ?1
