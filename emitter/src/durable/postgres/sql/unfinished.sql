SELECT count(*) FROM {deliveries}
WHERE emit_id BETWEEN $1::text::uuid AND $2::text::uuid
