-- Delivery `?1` in full; the last column says whether it is leased (its `run_at` is then the
-- lease's expiry).
SELECT id, listener, event_id, emit_id, emitted_at, run_at, attempt, worker, last_error,
       lease IS NOT NULL, payload, trace
FROM emitter_deliveries WHERE id = ?1
