SELECT listener, since FROM {paused} ORDER BY listener
