INSERT INTO emitter_activity (minute, listener, delivered, failed, retried)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (minute, listener) DO UPDATE SET
    delivered = delivered + excluded.delivered,
    failed = failed + excluded.failed,
    retried = retried + excluded.retried
