-- Version 4 to 5: the version of each stored event's shape (`Event::VERSION`), with its payload;
-- events stored before versions were are version 1.
ALTER TABLE emitter_deliveries ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE emitter_dead_letters ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
UPDATE emitter_meta SET value = '5' WHERE key = 'schema_version';
