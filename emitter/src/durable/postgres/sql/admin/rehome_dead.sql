-- Gives up to $2 of listener $1's dead letters to listener $3; counts them.
WITH moved AS (
    UPDATE {dead_letters} SET listener = $3::text WHERE id IN (
        SELECT id FROM {dead_letters} WHERE listener = $1::text LIMIT $2::int8
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
)
SELECT count(*) FROM moved
