-- The listeners that have deliveries, each found with one seek of `emitter_deliveries_order`.
WITH RECURSIVE names(name) AS (
    SELECT (SELECT min(listener) FROM emitter_deliveries)
    UNION ALL
    SELECT (SELECT min(listener) FROM emitter_deliveries WHERE listener > name)
    FROM names WHERE name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL
