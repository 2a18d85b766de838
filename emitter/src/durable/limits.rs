//! The concurrency limits a store was opened with, for its claims.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};

use super::Setup;

/// The listeners with a concurrency limit ([`Setup::concurrency`]) and their limit, as the last
/// [`Store::open`](super::Store::open) of a store handle gave them.
#[derive(Debug, Default)]
pub(crate) struct Limits(Mutex<BTreeMap<&'static str, NonZeroU32>>);

impl Limits {
    /// Takes the limits of `setup`.
    pub(crate) fn set(&self, setup: &Setup) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = setup.concurrency.clone();
    }

    /// The limits now.
    pub(crate) fn get(&self) -> BTreeMap<&'static str, NonZeroU32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The limit of `listener`, if it has one.
    pub(crate) fn of(&self, listener: &str) -> Option<u32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(listener)
            .map(|limit| limit.get())
    }
}
