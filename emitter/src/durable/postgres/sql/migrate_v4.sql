-- Version 3 to 4: what the operator's console keeps. Paused listeners (the claims skip them),
-- the workers' heartbeats (one row per worker and listener), and what the listeners did per
-- minute, summed over the workers.
CREATE TABLE {paused} (
    listener text PRIMARY KEY,
    since    timestamptz NOT NULL
);
CREATE TABLE {workers} (
    worker     text NOT NULL,
    listener   text NOT NULL,
    seen_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (worker, listener)
);
CREATE TABLE {activity} (
    minute    timestamptz NOT NULL,
    listener  text NOT NULL,
    delivered bigint NOT NULL,
    failed    bigint NOT NULL,
    retried   bigint NOT NULL,
    PRIMARY KEY (minute, listener)
);
INSERT INTO {versions} (version) VALUES (4);
