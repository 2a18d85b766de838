DELETE FROM {dead_letters} WHERE id = $1::int8 RETURNING id
