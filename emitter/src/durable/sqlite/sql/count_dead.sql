SELECT COUNT(*) FROM emitter_dead_letters
