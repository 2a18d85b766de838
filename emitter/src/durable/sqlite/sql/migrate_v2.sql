-- Version 1 to 2: the trace context of each event, and each delivery's first due time, which
-- orders a listener with a concurrency limit (the first due time of a delivery stored by
-- version 1 is its due time, or its emit time while it is leased).
ALTER TABLE emitter_deliveries ADD COLUMN trace TEXT;
ALTER TABLE emitter_deliveries ADD COLUMN first_due INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emitter_dead_letters ADD COLUMN trace TEXT;
UPDATE emitter_deliveries SET first_due = CASE WHEN lease IS NULL THEN run_at ELSE emitted_at END;
CREATE INDEX emitter_deliveries_order ON emitter_deliveries (listener, first_due, id);
UPDATE emitter_meta SET value = '2' WHERE key = 'schema_version';
