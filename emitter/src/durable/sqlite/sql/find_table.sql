SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1
