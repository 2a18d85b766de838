-- Version 4 to 5: the version of each stored event's shape (`Event::VERSION`), with its payload;
-- events stored before versions were are version 1.
ALTER TABLE {deliveries} ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE {dead_letters} ADD COLUMN version integer NOT NULL DEFAULT 1;
INSERT INTO {versions} (version) VALUES (5);
