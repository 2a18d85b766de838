-- Version 5 to 6: the workers' subscriptions, by which emitting processes route their emits
-- (one row per event and listener; `concurrency` NULL for none; `version` the newest version of
-- the event the worker reads; `seen_at` in Unix milliseconds).
CREATE TABLE emitter_subscriptions (
    event_id TEXT NOT NULL,
    listener TEXT NOT NULL,
    concurrency INTEGER,
    version INTEGER NOT NULL DEFAULT 1,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (event_id, listener)
) STRICT, WITHOUT ROWID;
UPDATE emitter_meta SET value = '6' WHERE key = 'schema_version';
