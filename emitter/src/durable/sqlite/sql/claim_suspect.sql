SELECT id, run_at FROM emitter_deliveries INDEXED BY emitter_deliveries_suspects WHERE (lease IS NOT NULL OR crashes > 0) AND run_at <= ?4 AND listener IN ({listeners})
