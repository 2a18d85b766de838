-- The rows are locked in the order of their ids (see `ack.sql`).
WITH held AS (
    SELECT d.id FROM {deliveries} AS d
    JOIN unnest($1::int8[], $2::int8[]) AS r(id, lease) ON d.id = r.id AND d.lease = r.lease
    ORDER BY d.id
    FOR UPDATE OF d
)
UPDATE {deliveries} AS d
SET lease_until = now() + $3::int8 * interval '1 millisecond',
    run_at = now() + $3::int8 * interval '1 millisecond'
FROM held
WHERE d.id = held.id
