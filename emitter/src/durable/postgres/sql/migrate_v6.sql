-- Version 5 to 6: the workers' subscriptions, by which emitting processes route their emits (one
-- row per event and listener; `concurrency` NULL for none; `version` the newest version of the
-- event the worker reads).
CREATE TABLE {subscriptions} (
    event_id    text NOT NULL,
    listener    text NOT NULL,
    concurrency integer,
    version     integer NOT NULL DEFAULT 1,
    seen_at     timestamptz NOT NULL,
    PRIMARY KEY (event_id, listener)
);
CREATE INDEX subscriptions_listener ON {subscriptions} (listener);
INSERT INTO {versions} (version) VALUES (6);
