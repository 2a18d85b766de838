//! Reporting a store that fails: an error when it starts, a warning now and then while it lasts,
//! and a line when it is over.

use std::time::Duration;

use crate::error::BackendError;

/// How often a store that keeps failing is reported again.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// Reports a store that fails: an error when it starts, a warning every [`REPORT_EVERY`] while
/// it lasts, and when it is over.
#[derive(Default)]
pub(super) struct Outage {
    since: Option<(std::time::Instant, std::time::Instant)>,
}

impl Outage {
    pub(super) fn failed(&mut self, what: &str, error: &BackendError) {
        let now = std::time::Instant::now();
        match &mut self.since {
            None => {
                tracing::error!("{what}, retrying: {error}");
                self.since = Some((now, now));
            }
            Some((start, reported)) if now.duration_since(*reported) >= REPORT_EVERY => {
                tracing::warn!(
                    "{what} for {:?} now, retrying: {error}",
                    now.duration_since(*start)
                );
                *reported = now;
            }
            Some(_) => tracing::debug!("{what}, retrying: {error}"),
        }
    }

    pub(super) fn over(&mut self, what: &str) {
        if let Some((start, _)) = self.since.take() {
            tracing::info!(
                "the store answers again after {:?}; {what} resumed",
                start.elapsed()
            );
        }
    }
}
