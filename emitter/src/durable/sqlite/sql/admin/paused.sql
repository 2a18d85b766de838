SELECT listener, since FROM emitter_paused ORDER BY listener
