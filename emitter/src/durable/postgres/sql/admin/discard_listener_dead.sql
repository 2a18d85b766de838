-- Deletes up to $2 of listener $1's dead letters; counts them.
WITH gone AS (
    DELETE FROM {dead_letters} WHERE id IN (
        SELECT id FROM {dead_letters} WHERE listener = $1::text LIMIT $2::int8
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
)
SELECT count(*) FROM gone
