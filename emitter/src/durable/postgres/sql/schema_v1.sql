CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE {versions} (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {deliveries} (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL,
    emit_id     uuid NOT NULL,
    emitted_at  timestamptz NOT NULL,
    payload     bytea NOT NULL,
    listener    text NOT NULL,
    attempt     integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    run_at      timestamptz NOT NULL,
    lease       bigint,
    lease_until timestamptz,
    worker      text,
    last_error  text
);
CREATE INDEX deliveries_due ON {deliveries} (run_at, id);
CREATE SEQUENCE {leases};
CREATE TABLE {dead_letters} (
    id         bigint PRIMARY KEY,
    event_id   text NOT NULL,
    emit_id    uuid NOT NULL,
    emitted_at timestamptz NOT NULL,
    payload    bytea NOT NULL,
    listener   text NOT NULL,
    attempts   integer NOT NULL CHECK (attempts >= 0),
    reason     text NOT NULL,
    failed_at  timestamptz NOT NULL
);
CREATE INDEX dead_letters_failed ON {dead_letters} (failed_at, id);
CREATE TABLE {keys} (
    key        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expiry ON {keys} (expires_at);
INSERT INTO {versions} (version) VALUES (1);
