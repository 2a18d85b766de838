-- Deletes up to $2 of listener $1's deliveries that are not running; counts them.
WITH gone AS (
    DELETE FROM {deliveries} WHERE id IN (
        SELECT id FROM {deliveries}
        WHERE listener = $1::text AND (lease_until IS NULL OR lease_until <= now())
        LIMIT $2::int8
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
)
SELECT count(*) FROM gone
