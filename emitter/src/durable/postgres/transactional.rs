//! Emits stored in the caller's own transaction.

use tokio_postgres::GenericClient;

use super::errors::{describe_failure, Failure};
use super::params::InsertBatch;
use super::PostgresStore;
use crate::durable::{Durable, Inserted, NewEmit};
use crate::emit_id::EmitId;
use crate::error::BackendError;

impl PostgresStore {
    /// Stores emits on `client`, the caller's connection or transaction: the same statement as
    /// [`Store::insert`](crate::durable::Store::insert), run in the caller's transaction, so that the emits are stored if and
    /// only if it commits (workers are notified at the commit). Keys are deduplicated as by
    /// `insert`; the schema must exist (see [`PostgresStore::migrate`]).
    ///
    /// ```no_run
    /// # async fn run(store: emitter::durable::postgres::PostgresStore,
    /// #     emits: Vec<emitter::durable::NewEmit>) -> Result<(), Box<dyn std::error::Error>> {
    /// use emitter::durable::postgres::tokio_postgres;
    ///
    /// let (mut client, connection) =
    ///     tokio_postgres::connect("postgres://app@localhost/app", tokio_postgres::NoTls).await?;
    /// tokio::spawn(connection);
    /// let transaction = client.transaction().await?;
    /// transaction.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[]).await?;
    /// store.insert_in(&transaction, &emits).await?;
    /// transaction.commit().await?; // the emits exist from here on, and workers are woken
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the statement fails: the connection broke, the schema is missing, or the caller's
    /// transaction is aborted (then nothing was stored).
    pub async fn insert_in(
        &self,
        client: &(impl GenericClient + Sync),
        emits: &[NewEmit],
    ) -> Result<Inserted, BackendError> {
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        let batch = InsertBatch::new(emits, self.key_retention_ms());
        let params = batch.typed_params();
        let rows = client
            .query_typed(&self.inner.sql.insert.text, &params)
            .await
            .map_err(|error| {
                describe_failure(
                    "could not store emits on the given connection",
                    None,
                    &self.inner.connect.secrets,
                    &Failure::Db(error),
                )
            })?;
        self.inserted(emits.len(), &rows)
    }
}

impl Durable<PostgresStore> {
    /// Emits `event` inside the caller's transaction (or on the caller's connection): the
    /// deliveries exist if and only if the transaction commits, and workers are woken at the
    /// commit. Use it to emit "order placed" in the transaction that inserts the order, so that
    /// neither can exist without the other.
    ///
    /// The emitter must have been started with this backend (its table says which listeners
    /// the event goes to). Returns the emit's id.
    ///
    /// ```no_run
    /// # use emitter::durable::{postgres::{PostgresStore, tokio_postgres}, Durable};
    /// # use emitter::{EmitOptions, Event};
    /// # #[derive(Event)] pub struct OrderPlaced { pub order: i64 }
    /// # async fn run(backend: Durable<PostgresStore>, client: &mut tokio_postgres::Client)
    /// #     -> Result<(), Box<dyn std::error::Error>> {
    /// let transaction = client.transaction().await?;
    /// transaction.execute("INSERT INTO orders (id) VALUES (42)", &[]).await?;
    /// backend
    ///     .emit_in(&transaction, OrderPlaced { order: 42 }, EmitOptions::new())
    ///     .await?;
    /// transaction.commit().await?; // the order and its event, or neither
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit_in<E: crate::Event>(
        &self,
        client: &(impl GenericClient + Sync),
        event: E,
        options: crate::EmitOptions,
    ) -> Result<EmitId, crate::EmitError> {
        let emit = self.prepare(&event, options)?;
        let emit_id = emit.event.emit_id;
        self.store()
            .insert_in(client, std::slice::from_ref(&emit))
            .await
            .map_err(|source| crate::EmitError::Backend {
                event_id: E::ID,
                source,
            })?;
        Ok(emit_id)
    }
}
