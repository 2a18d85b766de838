//! The schema-version check every store makes when it opens storage that exists already.

use crate::error::{BackendError, BackendErrorKind};

/// Checks the schema version `found` where `store` (for example "the SQLite store at
/// events.db") keeps it, against `known`, the version this code reads and writes. `None` means
/// the storage exists but records no version.
///
/// Versions start at 1 and only grow, so anything but `known` is refused: a newer version was
/// written by a newer emitter (a [`Conflict`](BackendErrorKind::Conflict)); no version, an older
/// one or one that is not a number means damaged storage ([`Corrupt`](BackendErrorKind::Corrupt)).
pub(crate) fn check_schema_version(
    store: &str,
    found: Option<&str>,
    known: u32,
) -> Result<(), BackendError> {
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
    if number < u64::from(known) {
        // Version 1 is the first, and the only one so far: nothing older can exist.
        return Err(BackendError::of(
            BackendErrorKind::Corrupt,
            format!("{store} has schema version {number}, which no emitter wrote: it is damaged"),
        ));
    }
    Ok(())
}
