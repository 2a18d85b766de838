//! Transactions a store opens for listeners whose writes commit together with their
//! acknowledgement (exactly-once effects on the store's own database).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::durable::Receipt;
use crate::error::BackendError;

/// The kind of transaction a listener takes (`tx: &PgTx` or `tx: &SqliteTx`), and a store can
/// open ([`Store::TRANSACTION`](crate::durable::Store::TRANSACTION)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TxKind {
    /// A PostgreSQL transaction (`PgTx`), on a `PostgresStore`.
    Postgres,
    /// A SQLite transaction (`SqliteTx`), on a `SqliteStore`.
    Sqlite,
}

impl fmt::Display for TxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxKind::Postgres => "a PostgreSQL transaction (`PgTx`)",
            TxKind::Sqlite => "a SQLite transaction (`SqliteTx`)",
        })
    }
}

/// How [`StoreTransaction::commit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Committed {
    /// The listener's writes and the acknowledgement are committed.
    Acknowledged,
    /// The delivery's lease was lost (another worker claimed it): everything was rolled back,
    /// and the delivery is that worker's now.
    LeaseLost,
}

/// A future a [`StoreTransaction`] returns.
pub type TxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A transaction a store opened on its own database for one delivery
/// ([`Store::begin`](crate::durable::Store::begin)): the listener runs in it, and the delivery is
/// acknowledged in it.
pub trait StoreTransaction: Send + 'static {
    /// What the listener's transaction parameter (`&PgTx`, `&SqliteTx`) borrows.
    fn handle(&self) -> Arc<dyn Any + Send + Sync>;

    /// Deletes the delivery of `receipt` in the transaction, checking inside it that the lease
    /// is still this claim's, and commits; rolls back and says [`Committed::LeaseLost`] when it
    /// is not. An error leaves the transaction rolled back (or its outcome unknown, when the
    /// connection broke during the commit: the delivery then runs again only if it was not
    /// committed).
    fn commit(self: Box<Self>, receipt: Receipt) -> TxFuture<Result<Committed, BackendError>>;

    /// Rolls the transaction back: the listener failed.
    fn rollback(self: Box<Self>) -> TxFuture<()>;
}
