//! The schema-version check every store makes when it opens storage that exists already.

use crate::error::{BackendError, BackendErrorKind};

/// Checks the schema version `found` where `store` (for example "the SQLite store at
/// events.db") keeps it, against `known`, the version this code reads and writes. `None` means
/// the storage exists but records no version.
///
/// Versions start at 1 and only grow. A newer version was written by a newer emitter and is
/// refused (a [`Conflict`](BackendErrorKind::Conflict)); no version, version 0 or one that is
/// not a number means damaged storage ([`Corrupt`](BackendErrorKind::Corrupt)). An older
/// version is returned, for the store to migrate from.
pub(crate) fn check_schema_version(
    store: &str,
    found: Option<&str>,
    known: u32,
) -> Result<u32, BackendError> {
    let Some(found) = found else {
        return Err(BackendError::of(
            BackendErrorKind::Corrupt,
            format!(
                "{store} has no schema version: it is damaged or was not created by this store; \
                 restore it, or give the store storage of its own"
            ),
        ));
    };
    let Ok(number) = found.trim().parse::<u64>() else {
        return Err(BackendError::of(
            BackendErrorKind::Corrupt,
            format!("{store} has a corrupt schema version `{found}` (expected a number)"),
        ));
    };
    if number > u64::from(known) {
        return Err(BackendError::of(
            BackendErrorKind::Conflict,
            format!(
                "{store} has schema version {number}, newer than version {known} that this \
                 emitter knows: it was written by a newer emitter; upgrade emitter to open it, \
                 or give this one storage of its own"
            ),
        ));
    }
    match u32::try_from(number) {
        Ok(version) if version >= 1 => Ok(version),
        _ => Err(BackendError::of(
            BackendErrorKind::Corrupt,
            format!("{store} has schema version {number}, which no emitter wrote: it is damaged"),
        )),
    }
}
