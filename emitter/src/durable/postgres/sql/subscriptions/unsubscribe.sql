-- Deletes the subscriptions of listener $1; answers how many there were.
WITH gone AS (
    DELETE FROM {subscriptions} WHERE listener = $1::text RETURNING 1
)
SELECT count(*) AS deleted FROM gone
