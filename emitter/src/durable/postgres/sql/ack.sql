-- The rows are locked in the order of their ids, as `extend.sql` and `release.sql` lock theirs:
-- a worker's acknowledgements and lease extensions touch the same rows at the same time, and
-- locking them in different orders deadlocks (PostgreSQL breaks it only after its
-- `deadlock_timeout`, long enough for other leases to run out meanwhile).
WITH held AS (
    SELECT d.id FROM {deliveries} AS d
    JOIN unnest($1::int8[], $2::int8[]) AS r(id, lease) ON d.id = r.id AND d.lease = r.lease
    ORDER BY d.id
    FOR UPDATE OF d
)
DELETE FROM {deliveries} AS d
USING held
WHERE d.id = held.id
