UPDATE {deliveries} AS d
SET lease_until = now() + $3::int8 * interval '1 millisecond',
    run_at = now() + $3::int8 * interval '1 millisecond'
FROM unnest($1::int8[], $2::int8[]) AS r(id, lease)
WHERE d.id = r.id AND d.lease = r.lease
