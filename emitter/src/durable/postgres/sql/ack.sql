DELETE FROM {deliveries} AS d
USING unnest($1::int8[], $2::int8[]) AS r(id, lease)
WHERE d.id = r.id AND d.lease = r.lease
