SELECT pg_advisory_xact_lock($1::int4, hashtext($2::text))
