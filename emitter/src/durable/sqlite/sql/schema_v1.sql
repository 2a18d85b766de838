CREATE TABLE emitter_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE emitter_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    listener TEXT NOT NULL,
    event_id TEXT NOT NULL,
    emit_id TEXT NOT NULL,
    emitted_at INTEGER NOT NULL,
    payload BLOB NOT NULL,
    run_at INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    lease TEXT,
    worker TEXT,
    last_error TEXT
) STRICT;
CREATE INDEX emitter_deliveries_due ON emitter_deliveries (listener, run_at);
CREATE INDEX emitter_deliveries_leased ON emitter_deliveries (run_at) WHERE lease IS NOT NULL;
CREATE TABLE emitter_dead_letters (
    id INTEGER PRIMARY KEY,
    listener TEXT NOT NULL,
    event_id TEXT NOT NULL,
    emit_id TEXT NOT NULL,
    emitted_at INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    failed_at INTEGER NOT NULL
) STRICT;
CREATE INDEX emitter_dead_letters_failed ON emitter_dead_letters (failed_at);
CREATE TABLE emitter_keys (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX emitter_keys_expiry ON emitter_keys (expires_at);
