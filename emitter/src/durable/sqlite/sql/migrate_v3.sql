-- Version 2 to 3: how many claims of each delivery since its last failed attempt ended without an
-- outcome (its worker died or lost its lease). A delivery with such a claim is a suspect: it may be
-- what killed its worker, so it is claimed alone (`claim_suspect.sql`, through the index below).
-- A delivery leased by version 2 is a suspect if its lease runs out. The index holds the leased
-- deliveries and the suspects: it replaces the one of the leased alone, which counting them used.
ALTER TABLE emitter_deliveries ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
DROP INDEX emitter_deliveries_leased;
CREATE INDEX emitter_deliveries_suspects ON emitter_deliveries (run_at)
WHERE lease IS NOT NULL OR crashes > 0;
UPDATE emitter_meta SET value = '3' WHERE key = 'schema_version';
