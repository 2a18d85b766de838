-- The rows are locked in the order of their ids (see `ack.sql`).
WITH held AS (
    SELECT d.id FROM {deliveries} AS d
    JOIN unnest($1::int8[], $2::int8[]) AS r(id, lease) ON d.id = r.id AND d.lease = r.lease
    ORDER BY d.id
    FOR UPDATE OF d
),
released AS (
    UPDATE {deliveries} AS d
    SET lease = NULL, lease_until = NULL, worker = NULL, run_at = now(),
        attempt = greatest(d.attempt - 1, 0)
    FROM held
    WHERE d.id = held.id
    RETURNING d.id
)
SELECT (SELECT count(*) FROM released) AS released,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM released)) AS w) AS woken
