-- A page of the waiting deliveries in emit order: of listener $1, or with $1 null of every
-- listener that has deliveries (found with one seek of `deliveries_order` each), a range of
-- `deliveries_order` per listener, merged. After the cursor ($2 first due, $3 id), due from $4
-- and before $5, of event $7 and emit $8 when given; at most $6.
WITH RECURSIVE names AS (
    (SELECT listener FROM {deliveries} WHERE $1::text IS NULL ORDER BY listener LIMIT 1)
    UNION ALL
    SELECT (SELECT d.listener FROM {deliveries} AS d
            WHERE d.listener > names.listener ORDER BY d.listener LIMIT 1)
    FROM names WHERE names.listener IS NOT NULL
),
chosen AS (
    SELECT listener FROM names WHERE listener IS NOT NULL
    UNION ALL
    SELECT $1::text WHERE $1::text IS NOT NULL
)
SELECT page.* FROM chosen CROSS JOIN LATERAL (
    SELECT id, listener, event_id, emit_id::text AS emit_id, emitted_at, run_at AS due,
           attempt AS attempts, NULL::text AS worker, last_error AS error, first_due AS key
    FROM {deliveries}
    WHERE listener = chosen.listener AND (first_due, id) > ($2::timestamptz, $3::int8)
      AND run_at <= now()
      AND ($4::timestamptz IS NULL OR run_at >= $4::timestamptz)
      AND ($5::timestamptz IS NULL OR run_at < $5::timestamptz)
      AND ($7::text IS NULL OR event_id = $7::text)
      AND ($8::text IS NULL OR emit_id = $8::text::uuid)
    ORDER BY first_due, id
    LIMIT $6::int8
) AS page
ORDER BY key, id
LIMIT $6::int8
