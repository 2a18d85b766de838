SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL
