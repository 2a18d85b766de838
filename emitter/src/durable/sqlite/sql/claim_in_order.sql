SELECT id, run_at FROM (SELECT id, run_at FROM emitter_deliveries WHERE listener = ?{listener} AND first_due <= ?4 ORDER BY first_due, id LIMIT ?{window}) WHERE run_at <= ?4
