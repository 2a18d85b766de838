-- Gives delivery $1 (if its lease is still $2) back until $3 ms from now with the note $4,
-- without counting the claim as an attempt: its event is of a newer version than the worker's.
UPDATE {deliveries}
SET lease = NULL, lease_until = NULL, worker = NULL, crashes = 0,
    attempt = greatest(attempt - 1, 0),
    run_at = now() + $3::int8 * interval '1 millisecond', last_error = $4::text
WHERE id = $1::int8 AND lease = $2::int8
