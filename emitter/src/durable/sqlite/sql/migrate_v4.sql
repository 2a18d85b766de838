-- Version 3 to 4: what the operator's console keeps. Paused listeners (the claim skips them),
-- the workers' heartbeats (one row per worker and listener), and what the listeners did per
-- minute (Unix milliseconds of the minute's start), summed over the workers.
CREATE TABLE emitter_paused (
    listener TEXT PRIMARY KEY,
    since INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE emitter_workers (
    worker TEXT NOT NULL,
    listener TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (worker, listener)
) STRICT, WITHOUT ROWID;
CREATE TABLE emitter_activity (
    minute INTEGER NOT NULL,
    listener TEXT NOT NULL,
    delivered INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    retried INTEGER NOT NULL,
    PRIMARY KEY (minute, listener)
) STRICT, WITHOUT ROWID;
UPDATE emitter_meta SET value = '4' WHERE key = 'schema_version';
