DELETE FROM {keys} WHERE key IN (
    SELECT key FROM {keys} WHERE expires_at <= now() LIMIT $1::int8
)
