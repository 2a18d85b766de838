-- Version 5 to 6: the workers' subscriptions, by which emitting processes route their emits (one
-- row per event and listener; `concurrency` NULL for none).
CREATE TABLE {subscriptions} (
    event_id    text NOT NULL,
    listener    text NOT NULL,
    concurrency integer,
    seen_at     timestamptz NOT NULL,
    PRIMARY KEY (event_id, listener)
);
CREATE INDEX subscriptions_listener ON {subscriptions} (listener);
INSERT INTO {versions} (version) VALUES (6);
