SELECT id, run_at FROM (SELECT id, run_at FROM emitter_deliveries WHERE listener = ?{listener} AND run_at <= ?4 AND lease IS NULL AND crashes = 0 ORDER BY run_at, id LIMIT ?5)
