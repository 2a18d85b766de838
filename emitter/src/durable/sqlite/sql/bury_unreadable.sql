-- A delivery the store could not read, moved to the dead letters with neutral values where its
-- own cannot be read (an emit id that is not 32 hex digits, an attempt count out of range), so
-- that the dead letter can be listed; the reason says what was wrong.
INSERT INTO emitter_dead_letters
(id, listener, event_id, emit_id, emitted_at, payload, trace, version, attempts, reason, failed_at)
SELECT id, listener, event_id,
       CASE WHEN length(emit_id) = 32 AND emit_id NOT GLOB '*[^0-9a-fA-F]*' THEN emit_id
            ELSE '00000000000000000000000000000000' END,
       emitted_at, payload, trace, version, max(0, min(attempt, 4294967295)), ?2, ?3
FROM emitter_deliveries WHERE id = ?1
