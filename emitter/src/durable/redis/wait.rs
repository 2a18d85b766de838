//! Waiting for work: a blocking `XREAD` on the watched streams, on a connection of its own.

use std::sync::PoisonError;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::Value;

use super::connection::{connection_config, redis_error};
use super::entries::{duration_millis, into_int};
use super::RedisStore;
use crate::error::BackendError;

/// How much longer than its `BLOCK` a wake-up read may take before it is given up.
const BLOCK_SLACK: Duration = Duration::from_secs(1);

impl RedisStore {
    /// In how many milliseconds the next delayed delivery (or retry held in place) is due, if
    /// there is one. One call of the server: it also tells whether the server answers.
    pub(super) async fn next_due(&self) -> Result<Option<u64>, BackendError> {
        let what = "find the next delayed delivery";
        let mut invocation = self.invocation(&self.scripts.next_due);
        for listener in self.concurrency.get().keys() {
            invocation.arg(*listener);
        }
        let next_due = self.eval(&invocation, what).await?;
        let Some(due) = next_due.into_iter().next() else {
            return Ok(None);
        };
        let due = into_int(due).map_err(|problem| self.unexpected(what, &problem))?;
        Ok(u64::try_from(due).ok())
    }

    /// Blocks until a watched stream has an entry past where this worker last saw its group, the
    /// next delayed delivery is due, or `timeout`.
    pub(super) async fn block_for_work(
        &self,
        waiter: &mut Option<ConnectionManager>,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        let watched = self
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if watched.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(());
        }
        // Redis refuses absurd timeouts; a day is more than any poll interval.
        let mut block = duration_millis(timeout).min(24 * 3600 * 1000);
        if let Some(due) = self.next_due().await? {
            block = block.min(due);
        }
        if block == 0 {
            return Ok(());
        }
        let connection = match waiter {
            Some(connection) => connection,
            None => {
                // No response timeout: the read blocks on purpose; the caller bounds it.
                let config = connection_config(&self.config).set_response_timeout(None);
                let connection = ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(|error| redis_error(&self.address, "connect", error))?;
                waiter.insert(connection)
            }
        };
        let mut read = ::redis::cmd("XREAD");
        read.arg("BLOCK")
            .arg(block)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS");
        {
            let delivered = self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for listener in &watched {
                read.arg(self.listener_key(listener));
            }
            for listener in &watched {
                read.arg(delivered.get(listener).map_or("$", String::as_str));
            }
        }
        let mut connection = connection.clone();
        let wait = Duration::from_millis(block) + BLOCK_SLACK;
        match tokio::time::timeout(wait, read.query_async::<Value>(&mut connection)).await {
            Ok(Ok(_)) | Err(_) => Ok(()),
            Ok(Err(error)) => Err(redis_error(&self.address, "wait for work", error)),
        }
    }
}
