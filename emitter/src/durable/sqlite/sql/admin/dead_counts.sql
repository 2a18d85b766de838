SELECT listener, count(*) FROM emitter_dead_letters GROUP BY listener
