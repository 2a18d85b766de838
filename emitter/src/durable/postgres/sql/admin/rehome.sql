-- Gives up to $2 of listener $1's deliveries that are not running to listener $3; counts them,
-- and wakes the workers.
WITH moved AS (
    UPDATE {deliveries} SET listener = $3::text WHERE id IN (
        SELECT id FROM {deliveries}
        WHERE listener = $1::text AND (lease_until IS NULL OR lease_until <= now())
        LIMIT $2::int8
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
)
SELECT (SELECT count(*) FROM moved) AS moved,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM moved)) AS w) AS woken
