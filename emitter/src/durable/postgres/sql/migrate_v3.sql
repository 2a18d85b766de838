-- Version 2 to 3: how many claims of each delivery since its last failed attempt ended without an
-- outcome (its worker died or lost its lease). A delivery with such a claim is a suspect: it may be
-- what killed its worker, so it is claimed alone (`claim_suspect.sql`, through the index below).
-- A delivery leased by version 2 is a suspect if its lease runs out.
ALTER TABLE {deliveries} ADD COLUMN crashes integer NOT NULL DEFAULT 0 CHECK (crashes >= 0);
CREATE INDEX deliveries_suspects ON {deliveries} (listener, run_at, id)
WHERE lease IS NOT NULL OR crashes > 0;
INSERT INTO {versions} (version) VALUES (3);
