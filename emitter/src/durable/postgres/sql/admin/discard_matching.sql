-- Discards up to $6 dead letters that `replay_matching.sql`'s filter matches; counts them.
WITH gone AS (
    DELETE FROM {dead_letters} WHERE id IN (
        SELECT id FROM {dead_letters}
        WHERE failed_at >= $1::timestamptz AND failed_at < $2::timestamptz
          AND ($3::text IS NULL OR listener = $3::text)
          AND ($4::text IS NULL OR event_id = $4::text)
          AND ($5::text IS NULL OR emit_id = $5::text::uuid)
        LIMIT $6::int8
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
)
SELECT count(*) FROM gone
