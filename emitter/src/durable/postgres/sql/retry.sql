UPDATE {deliveries}
SET lease = NULL, lease_until = NULL, crashes = 0,
    run_at = now() + $3::int8 * interval '1 millisecond', last_error = $4::text
WHERE id = $1::int8 AND lease = $2::int8
