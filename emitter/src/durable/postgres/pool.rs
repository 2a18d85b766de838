//! A small pool of connections, each with the statements prepared on it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::connection::Connect;
use super::errors::Failure;
use super::statements::Statement;

/// A connection of the pool, with the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    /// Prepared statements, by their name.
    prepared: HashMap<&'static str, tokio_postgres::Statement>,
}

impl Conn {
    pub(super) async fn prepare(
        &mut self,
        statement: &Statement,
    ) -> Result<tokio_postgres::Statement, Failure> {
        if let Some(prepared) = self.prepared.get(statement.name) {
            return Ok(prepared.clone());
        }
        let prepared = self
            .client
            .prepare(&statement.text)
            .await
            .map_err(Failure::Db)?;
        self.prepared.insert(statement.name, prepared.clone());
        Ok(prepared)
    }
}

/// At most `size` connections, opened when needed and dropped when broken.
pub(super) struct Pool {
    connect: Connect,
    pub(super) size: usize,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

/// A connection taken from the pool: back to it on drop, unless it broke or was dropped
/// mid-statement.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    /// Whether the connection was idle in the pool (rather than opened for this call).
    reused: bool,
    busy: bool,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    pub(super) fn new(connect: Connect, size: usize) -> Self {
        Pool {
            connect,
            size,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
        }
    }

    pub(super) async fn get(&self) -> Result<Pooled<'_>, Failure> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::Other("the connection pool is closed"))?;
        let idle = loop {
            let conn = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match conn {
                Some(conn) if conn.client.is_closed() => continue,
                conn => break conn,
            }
        };
        let reused = idle.is_some();
        let conn = match idle {
            Some(conn) => conn,
            None => Conn {
                client: self.connect.client(None).await.map_err(Failure::Db)?.0,
                prepared: HashMap::new(),
            },
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            reused,
            busy: true,
            _permit: permit,
        })
    }
}

impl Pooled<'_> {
    pub(super) fn conn(&mut self) -> Result<&mut Conn, Failure> {
        self.conn.as_mut().ok_or(Failure::Other(
            "the connection pool handed out no connection",
        ))
    }

    /// Marks the connection as reusable after `result`; returns whether to run the statement
    /// again on another connection: when this one, reused from the pool, turned out to have
    /// died before the statement reached the server (the server's shutdown message was waiting
    /// on it, or it was closed), which is certain to have left nothing done. Once per call.
    pub(super) fn done<T>(&mut self, result: &Result<T, Failure>, retried: bool) -> bool {
        self.busy = false;
        let Err(Failure::Db(error)) = result else {
            return false;
        };
        if let Some(conn) = self.conn.as_mut() {
            if error.as_db_error().is_some() {
                // The statement may have failed because the tables it was prepared against were
                // dropped or altered: prepare afresh next time.
                conn.prepared.clear();
            }
        }
        let died_before = error.is_closed()
            || error.code().is_some_and(|code| {
                *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN
            });
        if !died_before {
            return false;
        }
        // The server restarted or went away: the other idle connections are as dead.
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.reused && !retried
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection dropped mid-statement (a timeout, a cancelled call) is in a state we do
        // not know: close it rather than reuse it.
        if self.busy || conn.client.is_closed() {
            return;
        }
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}
