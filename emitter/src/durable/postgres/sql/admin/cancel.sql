-- Deletes delivery $1 unless it is leased; says what it did (or why not).
WITH gone AS (
    DELETE FROM {deliveries}
    WHERE id = $1::int8 AND (lease_until IS NULL OR lease_until <= now())
    RETURNING id
)
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM gone) THEN 'cancelled'
    WHEN EXISTS (SELECT 1 FROM {deliveries} WHERE id = $1::int8) THEN 'running'
    WHEN EXISTS (SELECT 1 FROM {dead_letters} WHERE id = $1::int8) THEN 'dead'
    ELSE 'not found'
END AS outcome
