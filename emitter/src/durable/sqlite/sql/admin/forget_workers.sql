-- Worker `?1`'s rows (its heartbeat replaces them), and every expired one (`?2` now).
DELETE FROM emitter_workers WHERE worker = ?1 OR expires_at <= ?2
