//! The store's SQL, one statement per file of `sql/`, by name, rendered for one schema.
//!
//! Public but hidden from the docs for the benchmarks, whose baseline runs the store's own
//! statements rather than copies of them; not a stable interface.

/// Takes the advisory lock that serializes migrations: `$1` the lock's first key, `$2` the schema.
pub(super) const MIGRATION_LOCK_SQL: &str = include_str!("sql/migration_lock.sql");
/// Whether schema `$1` has a version table.
pub(super) const HAS_SCHEMA_VERSION: &str = include_str!("sql/has_schema_version.sql");
/// The newest version applied (`{versions}` rendered with [`table`]).
pub(super) const SCHEMA_VERSION_SQL: &str = include_str!("sql/schema_version.sql");

/// A statement's text for one schema, and the name the pool caches it under.
#[derive(Debug)]
pub struct Statement {
    /// The statement's name: its file's, without `.sql`.
    pub name: &'static str,
    /// Its text, for one schema.
    pub text: String,
}

/// Every statement of the store, rendered for one schema; the parameters of each are written
/// in its file.
#[derive(Debug)]
pub struct Statements {
    /// Schema version 1, as one batch; the migrations that follow make it the current version,
    /// in a new schema as in one of an older version.
    pub schema_v1: String,
    /// From schema version 1 to 2, as one batch.
    pub migrate_v2: String,
    /// From schema version 2 to 3, as one batch.
    pub migrate_v3: String,
    /// From schema version 3 to 4, as one batch.
    pub migrate_v4: String,
    /// From schema version 4 to 5, as one batch.
    pub migrate_v5: String,
    /// From schema version 5 to 6, as one batch.
    pub migrate_v6: String,
    /// Stores a batch of emits, with their idempotency keys.
    pub insert: Statement,
    /// Stores a batch of emits that have no idempotency keys.
    pub insert_unkeyed: Statement,
    /// Leases due deliveries of some listeners, suspects excepted.
    pub claim: Statement,
    /// Leases the oldest due suspect of some listeners.
    pub claim_suspect: Statement,
    /// Leases the due deliveries among the first ones of a listener with a concurrency limit.
    pub claim_in_order: Statement,
    /// Gives back cancelled deliveries, due at once, as the same attempt.
    pub release: Statement,
    /// Counts the unfinished deliveries of a range of emits.
    pub unfinished: Statement,
    /// Extends leases still held.
    pub extend: Statement,
    /// Deletes deliveries whose lease still holds.
    pub ack: Statement,
    /// Deletes one delivery whose lease still holds, in a listener's transaction.
    pub ack_one: Statement,
    /// Releases a delivery until a later time, keeping the error.
    pub retry: Statement,
    /// Gives a delivery of a newer event version back until a later time, with a note, without
    /// counting the claim as an attempt.
    pub postpone: Statement,
    /// Moves a delivery to the dead letters.
    pub dead_letter: Statement,
    /// Lists dead letters, oldest first.
    pub dead_letters: Statement,
    /// Moves a dead letter back to the deliveries.
    pub replay: Statement,
    /// Deletes a dead letter.
    pub discard: Statement,
    /// Counts waiting, leased and dead deliveries.
    pub counts: Statement,
    /// Deletes expired idempotency keys.
    pub purge_keys: Statement,
}

impl Statements {
    /// The statements for the store in `schema` (a name the store accepts).
    pub fn new(schema: &str) -> Self {
        let statement = |name: &'static str, template: &str| Statement {
            name,
            text: render(template, schema),
        };
        Statements {
            schema_v1: render(include_str!("sql/schema_v1.sql"), schema),
            migrate_v2: render(include_str!("sql/migrate_v2.sql"), schema),
            migrate_v3: render(include_str!("sql/migrate_v3.sql"), schema),
            migrate_v4: render(include_str!("sql/migrate_v4.sql"), schema),
            migrate_v5: render(include_str!("sql/migrate_v5.sql"), schema),
            migrate_v6: render(include_str!("sql/migrate_v6.sql"), schema),
            insert: statement("insert", include_str!("sql/insert.sql")),
            insert_unkeyed: statement("insert_unkeyed", include_str!("sql/insert_unkeyed.sql")),
            claim: statement("claim", include_str!("sql/claim.sql")),
            claim_suspect: statement("claim_suspect", include_str!("sql/claim_suspect.sql")),
            claim_in_order: statement("claim_in_order", include_str!("sql/claim_in_order.sql")),
            release: statement("release", include_str!("sql/release.sql")),
            unfinished: statement("unfinished", include_str!("sql/unfinished.sql")),
            extend: statement("extend", include_str!("sql/extend.sql")),
            ack: statement("ack", include_str!("sql/ack.sql")),
            ack_one: statement("ack_one", include_str!("sql/ack_one.sql")),
            retry: statement("retry", include_str!("sql/retry.sql")),
            postpone: statement("postpone", include_str!("sql/postpone.sql")),
            dead_letter: statement("dead_letter", include_str!("sql/dead_letter.sql")),
            dead_letters: statement("dead_letters", include_str!("sql/dead_letters.sql")),
            replay: statement("replay", include_str!("sql/replay.sql")),
            discard: statement("discard", include_str!("sql/discard.sql")),
            counts: statement("counts", include_str!("sql/counts.sql")),
            purge_keys: statement("purge_keys", include_str!("sql/purge_keys.sql")),
        }
    }
}

/// `template` with the names of the schema's objects filled in: `{schema}`, `{deliveries}`,
/// `{dead_letters}`, `{keys}`, `{leases}`, `{versions}`, `{paused}`, `{workers}`, `{activity}`,
/// `{subscriptions}` and the notification `{channel}`.
pub(super) fn render(template: &str, schema: &str) -> String {
    template
        .replace("{schema}", &quote(schema))
        .replace("{deliveries}", &table(schema, "deliveries"))
        .replace("{dead_letters}", &table(schema, "dead_letters"))
        .replace("{keys}", &table(schema, "idempotency_keys"))
        .replace("{leases}", &table(schema, "leases"))
        .replace("{versions}", &table(schema, "schema_version"))
        .replace("{paused}", &table(schema, "paused"))
        .replace("{workers}", &table(schema, "workers"))
        .replace("{activity}", &table(schema, "activity"))
        .replace("{subscriptions}", &table(schema, "subscriptions"))
        .replace("{channel}", &channel_of(schema))
}

/// `"schema".name`: validated names, quoted all the same so that reserved words work.
pub(super) fn table(schema: &str, name: &str) -> String {
    format!("{}.{name}", quote(schema))
}

pub(super) fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// The notification channel of inserts: `<schema>_deliveries`.
pub(super) fn channel_of(schema: &str) -> String {
    format!("{schema}_deliveries")
}
