-- Version 1 to 2: the trace context of each event, and each delivery's first due time, which
-- orders a listener with a concurrency limit (for a delivery stored by version 1: its due time,
-- or its emit time while it is leased).
ALTER TABLE {deliveries} ADD COLUMN trace text;
ALTER TABLE {deliveries} ADD COLUMN first_due timestamptz;
UPDATE {deliveries} SET first_due = CASE WHEN lease IS NULL THEN run_at ELSE emitted_at END;
ALTER TABLE {deliveries} ALTER COLUMN first_due SET NOT NULL;
CREATE INDEX deliveries_order ON {deliveries} (listener, first_due, id);
ALTER TABLE {dead_letters} ADD COLUMN trace text;
INSERT INTO {versions} (version) VALUES (2);
