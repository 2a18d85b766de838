DELETE FROM emitter_subscriptions WHERE listener = ?1
