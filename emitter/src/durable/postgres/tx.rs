//! Listeners that run in a transaction on the store's database: [`PgTx`].

use std::any::Any;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use deadpool::managed::Object;
use tokio_postgres::Client;

use super::errors::Failure;
use super::params::parse_receipts;
use super::pool::Manager;
use super::PostgresStore;
use crate::durable::{Committed, Receipt, StoreTransaction, TxFuture};
use crate::error::BackendError;
use crate::extract::FromDeliveryRef;
use crate::listener::Delivery;
use crate::{durable::TxKind, error::Failure as ListenerFailure};

/// The PostgreSQL transaction a listener runs in: take it as `tx: &PgTx`, and its writes commit
/// together with the acknowledgement of its delivery, or not at all.
///
/// It derefs to the [`tokio_postgres::Client`] of a connection of the store's pool on which
/// `BEGIN` was run: run statements on it as on any client, and emit follow-up events in the same
/// transaction with [`Durable::emit_in`](crate::durable::Durable::emit_in)`(&**tx, ...)`. When
/// the listener returns `Ok`, the worker deletes the delivery in the transaction (only if its
/// lease is still this worker's) and commits; an `Err`, a panic or a timeout rolls it all back
/// and the delivery follows its retry policy. Do not run `COMMIT` or `ROLLBACK` yourself.
///
/// ```no_run
/// use emitter::durable::postgres::PgTx;
/// # #[derive(emitter::Event)] pub struct OrderPlaced { pub order: i64 }
///
/// #[emitter::listener(events = [OrderPlaced])]
/// async fn count_order(order: &i64, tx: &PgTx) -> Result<(), emitter::durable::postgres::tokio_postgres::Error> {
///     tx.execute("INSERT INTO order_log (order_id) VALUES ($1)", &[order]).await?;
///     Ok(())
/// }
/// ```
pub struct PgTx {
    conn: Object<Manager>,
    /// Committed or rolled back: the connection can go back to the pool.
    finished: AtomicBool,
}

impl PgTx {
    /// The transaction's client.
    pub fn client(&self) -> &Client {
        &self.conn.client
    }
}

impl Deref for PgTx {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client()
    }
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx").finish_non_exhaustive()
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        // Neither committed nor rolled back (a listener still held it, or the commit broke
        // off): closing the connection is what rolls the transaction back.
        if !self.finished.load(Ordering::Acquire) {
            self.conn.dirty = true;
        }
    }
}

#[diagnostic::do_not_recommend]
impl<E> FromDeliveryRef<E> for PgTx {
    const CONTEXT: bool = false;
    const TRANSACTION: Option<TxKind> = Some(TxKind::Postgres);

    fn from_delivery_ref<'a>(
        delivery: &Delivery<'a, E>,
        _: &'a E,
    ) -> Result<&'a Self, ListenerFailure> {
        delivery.transaction::<PgTx>()
    }
}

/// A listener's transaction, as the worker holds it.
struct Transaction {
    store: PostgresStore,
    tx: Arc<PgTx>,
}

impl PostgresStore {
    /// Opens a transaction on a connection of the pool, for a listener that takes one.
    pub(super) async fn begin_listener(&self) -> Result<Box<dyn StoreTransaction>, BackendError> {
        let conn = self
            .attempt("open a transaction for a listener", async {
                let mut conn = self.inner.pool.get_owned().await?;
                // Dropped before `BEGIN` is answered (a timeout), the connection is closed.
                conn.dirty = true;
                conn.client
                    .batch_execute("BEGIN")
                    .await
                    .map_err(Failure::Db)?;
                conn.dirty = false;
                Ok(conn)
            })
            .await?;
        Ok(Box::new(Transaction {
            store: self.clone(),
            tx: Arc::new(PgTx {
                conn,
                finished: AtomicBool::new(false),
            }),
        }))
    }
}

impl StoreTransaction for Transaction {
    fn handle(&self) -> Arc<dyn Any + Send + Sync> {
        self.tx.clone()
    }

    fn commit(self: Box<Self>, receipt: Receipt) -> TxFuture<Result<Committed, BackendError>> {
        Box::pin(async move {
            let Transaction { store, tx } = *self;
            let Ok(mut tx) = Arc::try_unwrap(tx) else {
                return Err(BackendError::new(
                    "the listener returned while something still held its transaction: rolled \
                     back",
                ));
            };
            let (ids, leases) = parse_receipts(std::slice::from_ref(&receipt));
            let (Some(id), Some(lease)) = (ids.first(), leases.last()) else {
                return Ok(Committed::LeaseLost);
            };
            let sql = &store.inner.sql.ack_one;
            let committed = store
                .attempt(
                    "acknowledge a delivery in its listener's transaction",
                    async {
                        let statement = tx.conn.prepare(sql).await?;
                        let deleted = tx
                            .conn
                            .client
                            .execute(&statement, &[id, lease])
                            .await
                            .map_err(Failure::Db)?;
                        let (end, committed) = if deleted == 0 {
                            ("ROLLBACK", Committed::LeaseLost)
                        } else {
                            ("COMMIT", Committed::Acknowledged)
                        };
                        tx.conn
                            .client
                            .batch_execute(end)
                            .await
                            .map_err(Failure::Db)?;
                        Ok(committed)
                    },
                )
                .await;
            match committed {
                Ok(committed) => {
                    tx.finished.store(true, Ordering::Release);
                    Ok(committed)
                }
                // Sent and unanswered: the commit may have gone through.
                Err(error) => Err(error.in_doubt()),
            }
        })
    }

    fn rollback(self: Box<Self>) -> TxFuture<()> {
        Box::pin(async move {
            let Transaction { store, tx } = *self;
            // Still held (a blocking listener that timed out runs on): closing the connection
            // once it lets go rolls back.
            let Ok(tx) = Arc::try_unwrap(tx) else { return };
            let rolled_back = store
                .attempt("roll back a listener's transaction", async {
                    tx.conn
                        .client
                        .batch_execute("ROLLBACK")
                        .await
                        .map_err(Failure::Db)
                })
                .await;
            if rolled_back.is_ok() {
                tx.finished.store(true, Ordering::Release);
            }
        })
    }
}
