-- Gives delivery `?1` (if its lease is still `?2`) back until `?3` with the note `?4`, without
-- counting the claim as an attempt: its event is of a newer version than the worker's.
UPDATE emitter_deliveries
SET run_at = ?3, last_error = ?4, lease = NULL, worker = NULL, crashes = 0,
    attempt = max(attempt - 1, 0)
WHERE id = ?1 AND lease = ?2
