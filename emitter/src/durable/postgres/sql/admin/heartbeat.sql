-- Worker $1 runs the listeners $2 until $6 ms from now; they did $3, $4 and $5 (delivered,
-- failed, retried) since its last heartbeat, added to this minute's activity. Its other rows go,
-- and so do every other worker's expired rows and activity older than two hours. No row is
-- written twice: the rows the worker keeps are updated, not deleted.
WITH forgotten AS (
    DELETE FROM {workers}
    WHERE (worker = $1::text AND listener <> ALL($2::text[]))
       OR (worker <> $1::text AND expires_at <= now())
),
registered AS (
    INSERT INTO {workers} (worker, listener, seen_at, expires_at)
    SELECT $1::text, listener, now(), now() + $6::int8 * interval '1 millisecond'
    FROM unnest($2::text[]) AS l(listener)
    ON CONFLICT (worker, listener) DO UPDATE
        SET seen_at = excluded.seen_at, expires_at = excluded.expires_at
),
added AS (
    INSERT INTO {activity} AS a (minute, listener, delivered, failed, retried)
    SELECT date_trunc('minute', now()), listener, delivered, failed, retried
    FROM unnest($2::text[], $3::int8[], $4::int8[], $5::int8[])
        AS u(listener, delivered, failed, retried)
    WHERE delivered + failed + retried > 0
    ON CONFLICT (minute, listener) DO UPDATE
        SET delivered = a.delivered + excluded.delivered,
            failed = a.failed + excluded.failed,
            retried = a.retried + excluded.retried
),
purged AS (
    DELETE FROM {activity} WHERE minute < now() - interval '2 hours'
)
SELECT 1
