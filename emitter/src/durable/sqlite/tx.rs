//! Listeners that run in a transaction on the store's file: [`SqliteTx`].

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection};
use tokio::sync::OwnedMutexGuard;

use super::connection::{setup_connection, sql_error};
use super::statements::ACK;
use super::SqliteStore;
use crate::durable::{Committed, Receipt, StoreTransaction, TxFuture, TxKind};
use crate::error::{BackendError, Failure};
use crate::extract::FromDeliveryRef;
use crate::listener::Delivery;

/// The SQLite transaction a listener runs in: take it as `tx: &SqliteTx`, and its writes commit
/// together with the acknowledgement of its delivery, or not at all.
///
/// [`with`](Self::with) runs statements on a connection to the store's file on which
/// `BEGIN IMMEDIATE` was run (the application's tables live in the same file). When the listener
/// returns `Ok`, the worker deletes the delivery in the transaction (only if its lease is still
/// this worker's) and commits; an `Err`, a panic or a timeout rolls it all back and the delivery
/// follows its retry policy. Do not run `COMMIT` or `ROLLBACK` yourself.
///
/// The transaction holds the file's write lock while the listener runs: the store's other
/// writes (claims, acknowledgements, emits) wait for it, and a process runs one transactional
/// delivery at a time. Keep such listeners short, and do slow work (a network call) elsewhere.
///
/// ```no_run
/// use emitter::durable::sqlite::SqliteTx;
/// # #[derive(emitter::Event)] pub struct OrderPlaced { pub order: i64 }
///
/// #[emitter::listener(events = [OrderPlaced])]
/// async fn count_order(order: &i64, tx: &SqliteTx) -> Result<(), emitter::BoxError> {
///     tx.with(|conn| conn.execute("INSERT INTO order_log (order_id) VALUES (?1)", [order]))?;
///     Ok(())
/// }
/// ```
pub struct SqliteTx {
    /// `None` once the worker committed or rolled back.
    conn: Mutex<Option<Connection>>,
}

/// The error of [`SqliteTx::with`] once the transaction is over: the listener timed out, and
/// the worker rolled it back.
#[derive(Debug, thiserror::Error)]
#[error("the listener's SQLite transaction is over (rolled back at the listener's timeout)")]
#[non_exhaustive]
pub struct TransactionEnded;

/// So that `tx.with(|conn| conn.execute(...))?` reads as rusqlite's own calls do.
impl From<TransactionEnded> for rusqlite::Error {
    fn from(ended: TransactionEnded) -> Self {
        // The one variant that carries an error of ours whatever rusqlite's features; it displays it.
        rusqlite::Error::ToSqlConversionFailure(Box::new(ended))
    }
}

impl SqliteTx {
    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `statements` with the transaction's connection, and returns what they return: a
    /// `rusqlite::Result`, or any result whose error converts from [`TransactionEnded`] (a
    /// [`BoxError`](crate::BoxError), say, to emit follow-up events with
    /// [`Durable::emit_in`](crate::durable::Durable::emit_in) in the same transaction).
    ///
    /// # Errors
    ///
    /// What `statements` returns, or [`TransactionEnded`] when the transaction is over.
    pub fn with<T, E: From<TransactionEnded>>(
        &self,
        statements: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.lock();
        let conn = conn.as_ref().ok_or(TransactionEnded)?;
        statements(conn)
    }
}

impl std::fmt::Debug for SqliteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTx").finish_non_exhaustive()
    }
}

#[diagnostic::do_not_recommend]
impl<E> FromDeliveryRef<E> for SqliteTx {
    const CONTEXT: bool = false;
    const TRANSACTION: Option<TxKind> = Some(TxKind::Sqlite);

    fn from_delivery_ref<'a>(delivery: &Delivery<'a, E>, _: &'a E) -> Result<&'a Self, Failure> {
        delivery.transaction::<SqliteTx>()
    }
}

/// The connection listeners' transactions run on, one at a time (they hold the write lock).
pub(super) type TxConnection = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// A listener's transaction, as the worker holds it.
struct Transaction {
    store: SqliteStore,
    tx: Arc<SqliteTx>,
    /// The store's transaction connection, lent to `tx` until it ends.
    slot: OwnedMutexGuard<Option<Connection>>,
}

impl SqliteStore {
    /// Opens a transaction on the store's second connection, for a listener that takes one.
    pub(super) async fn begin_listener(&self) -> Result<Box<dyn StoreTransaction>, BackendError> {
        let mut slot = Arc::clone(&self.inner.tx_conn).lock_owned().await;
        let path = self.inner.path.clone();
        let kept = slot.take();
        let conn = blocking(&self.inner.path, move || {
            let conn = match kept {
                Some(conn) => conn,
                None => {
                    let mut conn = Connection::open(&path).map_err(|error| {
                        sql_error(
                            &path,
                            "open a connection for a listener's transaction",
                            error,
                        )
                    })?;
                    setup_connection(&path, &mut conn)?;
                    conn
                }
            };
            conn.execute_batch("BEGIN IMMEDIATE")
                .map_err(|error| sql_error(&path, "begin a listener's transaction", error))?;
            Ok(conn)
        })
        .await?;
        Ok(Box::new(Transaction {
            store: self.clone(),
            tx: Arc::new(SqliteTx {
                conn: Mutex::new(Some(conn)),
            }),
            slot,
        }))
    }
}

impl Transaction {
    /// Takes the connection back from the listener (waiting for a statement it runs), ends the
    /// transaction with `end`, and keeps the connection for the next one.
    async fn end<T: Send + 'static>(
        self,
        end: impl FnOnce(&Connection) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let Transaction {
            store,
            tx,
            mut slot,
        } = self;
        let (conn, result) = blocking(&store.inner.path, move || {
            let Some(conn) = tx.lock().take() else {
                return Err(BackendError::new(
                    "a listener's SQLite transaction was ended twice (a bug in emitter)",
                ));
            };
            let result = end(&conn);
            if !conn.is_autocommit() {
                // The statement that ends it failed: make sure nothing stays open.
                let _ = conn.execute_batch("ROLLBACK");
            }
            Ok((conn, result))
        })
        .await?;
        *slot = Some(conn);
        drop(slot);
        store.wake();
        result
    }
}

impl StoreTransaction for Transaction {
    fn handle(&self) -> Arc<dyn Any + Send + Sync> {
        self.tx.clone()
    }

    fn commit(self: Box<Self>, receipt: Receipt) -> TxFuture<Result<Committed, BackendError>> {
        let path = self.store.inner.path.clone();
        Box::pin(self.end(move |conn| {
            let error =
                |error| sql_error(&path, "acknowledge a delivery in its transaction", error);
            let Some((id, lease)) = receipt.parse::<i64, String>() else {
                conn.execute_batch("ROLLBACK").map_err(error)?;
                return Ok(Committed::LeaseLost);
            };
            let deleted = conn
                .prepare_cached(ACK)
                .and_then(|mut statement| statement.execute(params![id, lease]))
                .map_err(error)?;
            if deleted == 0 {
                conn.execute_batch("ROLLBACK").map_err(error)?;
                return Ok(Committed::LeaseLost);
            }
            conn.execute_batch("COMMIT").map_err(error)?;
            Ok(Committed::Acknowledged)
        }))
    }

    fn rollback(self: Box<Self>) -> TxFuture<()> {
        Box::pin(async move {
            let path = self.store.inner.path.clone();
            let rolled_back = self
                .end(move |conn| {
                    conn.execute_batch("ROLLBACK").map_err(|error| {
                        sql_error(&path, "roll back a listener's transaction", error)
                    })
                })
                .await;
            if let Err(error) = rolled_back {
                tracing::warn!("{error}");
            }
        })
    }
}

/// Runs `job` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    path: &std::path::Path,
    job: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(job)
        .await
        .unwrap_or_else(|error| {
            Err(BackendError::with_source(
                format!(
                    "a statement on the SQLite store {} panicked or was cancelled",
                    path.display()
                ),
                error,
            ))
        })
}
