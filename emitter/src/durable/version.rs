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

#[cfg(test)]
mod tests {
    use super::check_schema_version;
    use crate::error::BackendErrorKind;

    fn kind(found: Option<&str>) -> Option<BackendErrorKind> {
        check_schema_version("the store", found, 1)
            .err()
            .map(|error| error.kind())
    }

    #[test]
    fn only_the_known_version_opens_and_the_others_say_why() {
        assert_eq!(kind(Some("1")), None);
        assert_eq!(kind(Some(" 1\n")), None, "written by hand, with spaces");
        assert_eq!(kind(Some("2")), Some(BackendErrorKind::Conflict));
        assert_eq!(kind(Some("0")), Some(BackendErrorKind::Corrupt));
        assert_eq!(kind(Some("one")), Some(BackendErrorKind::Corrupt));
        assert_eq!(kind(None), Some(BackendErrorKind::Corrupt));
        let newer = check_schema_version("the store at x", Some("7"), 1).unwrap_err();
        assert_eq!(
            newer.to_string(),
            "the store at x has schema version 7, newer than version 1 that this emitter \
             knows: it was written by a newer emitter; upgrade emitter to open it, or give this \
             one storage of its own"
        );
    }

    #[test]
    fn an_event_over_the_limit_is_too_large_with_its_size() {
        let error = crate::BackendError::payload_too_large(300, 256);
        assert_eq!(error.kind(), BackendErrorKind::TooLarge);
        assert_eq!(error.too_large(), Some((300, 256)));
    }
}
