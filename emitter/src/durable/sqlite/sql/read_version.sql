SELECT value FROM emitter_meta WHERE key = 'schema_version'
