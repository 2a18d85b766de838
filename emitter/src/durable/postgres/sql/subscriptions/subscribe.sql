-- Replaces the subscriptions of the listeners $1 with those of events $2 by listeners $3 with
-- concurrency limits $4 (0 for none), reading the events up to versions $5, seen now. The rows deleted and the rows written are
-- disjoint: one statement may not touch a row twice.
WITH forgotten AS (
    DELETE FROM {subscriptions} AS s
    WHERE s.listener = ANY($1::text[])
      AND NOT EXISTS (
          SELECT 1 FROM unnest($2::text[], $3::text[]) AS n(event_id, listener)
          WHERE n.event_id = s.event_id AND n.listener = s.listener
      )
)
INSERT INTO {subscriptions} (event_id, listener, concurrency, version, seen_at)
SELECT event_id, listener, NULLIF(concurrency, 0), version, now()
FROM unnest($2::text[], $3::text[], $4::int4[], $5::int4[])
    AS n(event_id, listener, concurrency, version)
ON CONFLICT (event_id, listener) DO UPDATE
    SET concurrency = excluded.concurrency, version = excluded.version,
        seen_at = excluded.seen_at
