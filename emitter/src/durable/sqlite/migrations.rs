//! Creating the schema in a new file, and checking the version of an existing one.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::connection::sql_error;
use super::statements::{
    FIND_TABLE, MIGRATE_V2, MIGRATE_V3, MIGRATE_V4, MIGRATE_V5, MIGRATE_V6, READ_VERSION,
    RECORD_VERSION, SCHEMA_V1, TABLES,
};
use crate::durable::check_schema_version;
use crate::error::{BackendError, BackendErrorKind};

/// The schema version this code writes and reads; older ones are migrated on open.
pub(crate) const SCHEMA_VERSION: u32 = 6;

pub(super) fn create_schema(path: &Path, conn: &mut Connection) -> Result<(), BackendError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|error| sql_error(path, "read the schema", error))?;
    let mut existing = Vec::new();
    for table in TABLES {
        let found: Option<String> = tx
            .query_row(FIND_TABLE, [table], |row| row.get(0))
            .optional()
            .map_err(|error| sql_error(path, "read the schema", error))?;
        if found.is_some() {
            existing.push(table);
        }
    }
    let version = if existing.is_empty() {
        tx.execute_batch(SCHEMA_V1)
            .map_err(|error| sql_error(path, "create the schema", error))?;
        tx.execute(RECORD_VERSION, ["1"])
            .map_err(|error| sql_error(path, "record the schema version", error))?;
        1
    } else {
        if !existing.contains(&"emitter_meta") {
            return Err(BackendError::of(
                BackendErrorKind::Conflict,
                format!(
                    "the SQLite file {} has tables named like the emitter store's ({}) but no \
                 `emitter_meta` table with a schema version: it was not created by this store; \
                 use another file",
                    path.display(),
                    existing.join(", ")
                ),
            ));
        }
        let version: Option<String> = tx
            .query_row(READ_VERSION, [], |row| row.get(0))
            .optional()
            .map_err(|error| sql_error(path, "read the schema version", error))?;
        let version = check_schema_version(
            &format!("the SQLite store {}", path.display()),
            version.as_deref(),
            SCHEMA_VERSION,
        )?;
        let missing: Vec<&str> = TABLES
            .iter()
            .copied()
            .filter(|table| !existing.contains(table))
            .collect();
        if !missing.is_empty() {
            return Err(BackendError::of(
                BackendErrorKind::Corrupt,
                format!(
                    "the SQLite store {} lacks the table(s) {}: the file is corrupt",
                    path.display(),
                    missing.join(", ")
                ),
            ));
        }
        version
    };
    if version < 2 {
        tx.execute_batch(MIGRATE_V2)
            .map_err(|error| sql_error(path, "migrate the schema from version 1 to 2", error))?;
    }
    if version < 3 {
        tx.execute_batch(MIGRATE_V3)
            .map_err(|error| sql_error(path, "migrate the schema from version 2 to 3", error))?;
    }
    if version < 4 {
        tx.execute_batch(MIGRATE_V4)
            .map_err(|error| sql_error(path, "migrate the schema from version 3 to 4", error))?;
    }
    if version < 5 {
        tx.execute_batch(MIGRATE_V5)
            .map_err(|error| sql_error(path, "migrate the schema from version 4 to 5", error))?;
    }
    if version < 6 {
        tx.execute_batch(MIGRATE_V6)
            .map_err(|error| sql_error(path, "migrate the schema from version 5 to 6", error))?;
    }
    tx.commit()
        .map_err(|error| sql_error(path, "create the schema", error))
}
