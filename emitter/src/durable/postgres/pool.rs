//! The connections of the store: a `deadpool` pool of them, each with the statements prepared on
//! it, with what a store needs on top (a statement that met a connection the server had already
//! closed runs once more on a new one; a connection dropped mid-statement is closed).

use std::collections::HashMap;

use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
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
    /// Left in a transaction of unknown state (a listener's, never committed nor rolled back):
    /// closed rather than reused.
    pub(super) dirty: bool,
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

/// Opens connections for the pool, and keeps those that are still open.
pub(super) struct Manager {
    connect: Connect,
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Conn, tokio_postgres::Error> {
        Ok(Conn {
            client: self.connect.client(None).await?.0,
            prepared: HashMap::new(),
            dirty: false,
        })
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<tokio_postgres::Error> {
        if conn.client.is_closed() {
            return Err(RecycleError::message("the connection was closed"));
        }
        if conn.dirty {
            return Err(RecycleError::message(
                "the connection was left in a transaction",
            ));
        }
        Ok(())
    }
}

/// At most `size` connections, opened when needed and dropped when broken.
pub(super) struct Pool {
    pool: managed::Pool<Manager>,
    pub(super) size: usize,
}

/// A connection taken from the pool: back to it on drop, unless it broke or was dropped
/// mid-statement.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Object<Manager>>,
    busy: bool,
}

impl Pool {
    pub(super) fn new(connect: Connect, size: usize) -> Result<Self, Failure> {
        let pool = managed::Pool::builder(Manager { connect })
            .max_size(size)
            .build()
            .map_err(|_| Failure::Other("the connection pool cannot be built"))?;
        Ok(Pool { pool, size })
    }

    pub(super) async fn get(&self) -> Result<Pooled<'_>, Failure> {
        let conn = self.get_owned().await?;
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            busy: true,
        })
    }
}

impl Pool {
    /// A connection of its own, for a listener's transaction: back to the pool when dropped,
    /// unless it is [`Conn::dirty`] or closed.
    pub(super) async fn get_owned(&self) -> Result<Object<Manager>, Failure> {
        self.pool.get().await.map_err(|error| match error {
            managed::PoolError::Backend(error) => Failure::Db(error),
            _ => Failure::Other("the connection pool handed out no connection"),
        })
    }
}

impl Pooled<'_> {
    pub(super) fn conn(&mut self) -> Result<&mut Conn, Failure> {
        self.conn.as_deref_mut().ok_or(Failure::Other(
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
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        if error.as_db_error().is_some() {
            // The statement may have failed because the tables it was prepared against were
            // dropped or altered: prepare afresh next time.
            conn.prepared.clear();
        }
        let died_before = error.is_closed()
            || error.code().is_some_and(|code| {
                *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN
            });
        if !died_before {
            return false;
        }
        let reused = Object::metrics(conn).recycle_count > 0;
        // The server restarted or went away: the idle connections are as dead.
        let _ = self.pool.pool.retain(|_, _| false);
        reused && !retried
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection dropped mid-statement (a timeout, a cancelled call) is in a state we do
        // not know: close it rather than reuse it.
        if self.busy || conn.client.is_closed() {
            drop(Object::take(conn));
        }
    }
}
