WITH released AS (
    UPDATE {deliveries} AS d
    SET lease = NULL, lease_until = NULL, worker = NULL, run_at = now(),
        attempt = greatest(d.attempt - 1, 0)
    FROM unnest($1::int8[], $2::int8[]) AS r(id, lease)
    WHERE d.id = r.id AND d.lease = r.lease
    RETURNING d.id
)
SELECT (SELECT count(*) FROM released) AS released,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM released)) AS w) AS woken
