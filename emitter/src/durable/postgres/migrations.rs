//! Creating the schema, or checking that the one there is this version.

use super::errors::Failure;
use super::pool::Conn;
use super::statements::{
    table, Statements, HAS_SCHEMA_VERSION, MIGRATION_LOCK_SQL, SCHEMA_VERSION_SQL,
};

/// The schema version this code creates and understands; older ones are migrated.
pub(super) const SCHEMA_VERSION: u32 = 6;
/// The first key of the advisory lock that serializes migrations ("emit" in ASCII); the second
/// is a hash of the schema name.
const MIGRATION_LOCK: i32 = 0x656d_6974;

/// Creates the schema (version 1, then the migrations) in one transaction, under the advisory
/// lock, unless it exists; migrates one of an older version; returns the version the schema has
/// (or now has), `None` when its version table is empty, for
/// [`check_schema_version`](crate::durable::check_schema_version).
pub(super) async fn migrate(
    conn: &mut Conn,
    schema: &str,
    statements: &Statements,
) -> Result<Option<String>, Failure> {
    let transaction = conn.client.transaction().await.map_err(Failure::Db)?;
    transaction
        .execute(MIGRATION_LOCK_SQL, &[&MIGRATION_LOCK, &schema])
        .await
        .map_err(Failure::Db)?;
    let exists: bool = transaction
        .query_one(HAS_SCHEMA_VERSION, &[&schema])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(Failure::Db)?;
    let version = if exists {
        let version: Option<i32> = transaction
            .query_one(
                &SCHEMA_VERSION_SQL.replace("{versions}", &table(schema, "schema_version")),
                &[],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(Failure::Db)?;
        match version.and_then(|version| u32::try_from(version).ok()) {
            Some(known @ 1..SCHEMA_VERSION) => known,
            // This version, or one to refuse: nothing to do here.
            _ => return Ok(version.map(|version| version.to_string())),
        }
    } else {
        transaction
            .batch_execute(&statements.schema_v1)
            .await
            .map_err(Failure::Db)?;
        1
    };
    let migrations = [
        (2, &statements.migrate_v2),
        (3, &statements.migrate_v3),
        (4, &statements.migrate_v4),
        (5, &statements.migrate_v5),
        (6, &statements.migrate_v6),
    ];
    for (to, migration) in migrations {
        if version < to {
            transaction
                .batch_execute(migration)
                .await
                .map_err(Failure::Db)?;
        }
    }
    transaction.commit().await.map_err(Failure::Db)?;
    Ok(Some(SCHEMA_VERSION.to_string()))
}
