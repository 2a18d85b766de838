-- Resumes listener $1; counts it if it was paused, and then wakes the workers.
WITH gone AS (
    DELETE FROM {paused} WHERE listener = $1::text RETURNING listener
)
SELECT (SELECT count(*) FROM gone) AS resumed,
       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                              WHERE EXISTS (SELECT 1 FROM gone)) AS w) AS woken
