//! The store's SQL, one statement per file of `sql/`, by name.
//!
//! Public but hidden from the docs for the benchmarks, whose baseline runs the store's own
//! statements rather than copies of them; not a stable interface.

/// The tables and indexes of schema version 1, created in one batch; the migrations that follow
/// make them the current version, in a new file as in one of an older version.
pub const SCHEMA_V1: &str = include_str!("sql/schema_v1.sql");
/// From schema version 1 to version 2.
pub const MIGRATE_V2: &str = include_str!("sql/migrate_v2.sql");
/// From schema version 2 to version 3.
pub const MIGRATE_V3: &str = include_str!("sql/migrate_v3.sql");
/// From schema version 3 to version 4.
pub const MIGRATE_V4: &str = include_str!("sql/migrate_v4.sql");
/// From schema version 4 to version 5.
pub const MIGRATE_V5: &str = include_str!("sql/migrate_v5.sql");
/// From schema version 5 to version 6.
pub const MIGRATE_V6: &str = include_str!("sql/migrate_v6.sql");
/// The tables of schema version 1, which a file either has all of or none of (the migrations
/// add the others).
pub(super) const TABLES: [&str; 4] = [
    "emitter_deliveries",
    "emitter_dead_letters",
    "emitter_keys",
    "emitter_meta",
];
pub(super) const FIND_TABLE: &str = include_str!("sql/find_table.sql");
pub(super) const READ_VERSION: &str = include_str!("sql/read_version.sql");
pub(super) const RECORD_VERSION: &str = include_str!("sql/record_version.sql");

pub(super) const INSERT_KEY: &str = include_str!("sql/insert_key.sql");
/// Stores one delivery: `?1` listener, `?2` event id, `?3` emit id, `?4` emitted at, `?5`
/// payload, `?6` trace context, `?7` due at, `?8` the event's version.
pub const INSERT_DELIVERY: &str = include_str!("sql/insert_delivery.sql");
pub(super) const PURGE_KEYS: &str = include_str!("sql/purge_keys.sql");
pub(super) const EXTEND: &str = include_str!("sql/extend.sql");
/// Deletes delivery `?1` if its lease is still `?2`.
pub const ACK: &str = include_str!("sql/ack.sql");
pub(super) const RETRY: &str = include_str!("sql/retry.sql");
pub(super) const POSTPONE: &str = include_str!("sql/postpone.sql");
pub(super) const RELEASE: &str = include_str!("sql/release.sql");
pub(super) const COUNT_UNFINISHED_OF: &str = include_str!("sql/count_unfinished_of.sql");
pub(super) const BURY: &str = include_str!("sql/bury.sql");
pub(super) const BURY_UNREADABLE: &str = include_str!("sql/bury_unreadable.sql");
pub(super) const DELETE_DELIVERY: &str = include_str!("sql/delete_delivery.sql");
pub(super) const DEAD_LETTERS: &str = include_str!("sql/dead_letters.sql");
pub(super) const REPLAY: &str = include_str!("sql/replay.sql");
pub(super) const DISCARD: &str = include_str!("sql/discard.sql");
pub(super) const COUNT_DELIVERIES: &str = include_str!("sql/count_deliveries.sql");
pub(super) const COUNT_LEASED: &str = include_str!("sql/count_leased.sql");
pub(super) const COUNT_DEAD: &str = include_str!("sql/count_dead.sql");
pub(super) const SUBSCRIBE: &str = include_str!("sql/subscribe.sql");
pub(super) const UNSUBSCRIBE: &str = include_str!("sql/unsubscribe.sql");
pub(super) const SUBSCRIPTIONS: &str = include_str!("sql/subscriptions.sql");
pub(super) const BACKLOG: &str = include_str!("sql/backlog.sql");

/// The claim, around the due deliveries of each listener (`{due}`).
const CLAIM: &str = include_str!("sql/claim.sql");
/// The due deliveries of one listener, the one bound as `?{listener}`.
const CLAIM_DUE: &str = include_str!("sql/claim_due.sql");
/// The due deliveries among the first `?{window}` unfinished ones of a listener with a
/// concurrency limit, in emit order.
const CLAIM_IN_ORDER: &str = include_str!("sql/claim_in_order.sql");
/// The due suspects of the listeners bound as `{listeners}`.
const CLAIM_SUSPECT: &str = include_str!("sql/claim_suspect.sql");

/// The claim statement for `listeners`, each with its concurrency limit if it has one: the
/// oldest due deliveries of each listener (an index range each, at most `limit`), or for a
/// limited listener the due ones among its first deliveries in emit order (as many as its
/// limit); the oldest `limit` of those, leased in the same statement. Suspects (deliveries with
/// a claim that ended without an outcome) are left to [`claim_suspect`].
///
/// Parameters: `?1` lease token, `?2` worker, `?3` lease expiry, `?4` now, `?5` limit, then
/// per listener its name and, when limited, its limit, in order from `?6` on. Only placeholder
/// numbers are written into the text.
pub fn claim(listeners: &[Option<u32>]) -> String {
    let mut due = String::new();
    let mut next = 6;
    for (index, limit) in listeners.iter().enumerate() {
        if index > 0 {
            due.push_str(" UNION ALL ");
        }
        let part = match limit {
            None => CLAIM_DUE
                .trim_end()
                .replace("{listener}", &next.to_string()),
            Some(_) => {
                next += 1;
                CLAIM_IN_ORDER
                    .trim_end()
                    .replace("{listener}", &(next - 1).to_string())
                    .replace("{window}", &next.to_string())
            }
        };
        next += 1;
        due.push_str(&part);
    }
    CLAIM.trim_end().replace("{due}", &due)
}

/// The statement that claims the oldest due suspect of `listeners` listeners (a delivery whose
/// lease ran out, or with such a claim since its last failed attempt), through the index of
/// suspects: its range of due rows holds only suspects, however long the backlog.
///
/// Parameters as [`claim`]'s, with the limit `?5` at 1 and the listeners' names from `?6` on.
pub fn claim_suspect(listeners: usize) -> String {
    let names: Vec<String> = (0..listeners)
        .map(|index| format!("?{}", index + 6))
        .collect();
    let due = CLAIM_SUSPECT
        .trim_end()
        .replace("{listeners}", &names.join(", "));
    CLAIM.trim_end().replace("{due}", &due)
}
