SELECT id, listener, event_id, emit_id::text AS emit_id, emitted_at, payload, trace, version,
       attempts, reason, failed_at
FROM {dead_letters} ORDER BY failed_at, id LIMIT $1::int8
