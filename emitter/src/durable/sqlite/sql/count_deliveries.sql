SELECT COUNT(*) FROM emitter_deliveries
