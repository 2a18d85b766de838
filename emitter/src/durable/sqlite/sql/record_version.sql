INSERT INTO emitter_meta (key, value) VALUES ('schema_version', ?1)
