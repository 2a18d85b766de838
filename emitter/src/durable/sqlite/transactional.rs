//! Emits stored in the caller's own transaction, on the caller's connection to the store's file.

use std::sync::Arc;

use rusqlite::Connection;

use super::connection::sql_error;
use super::SqliteStore;
use crate::durable::{Durable, Inserted, NewEmit};
use crate::emit_id::EmitId;
use crate::error::{BackendError, BackendErrorKind};

impl SqliteStore {
    /// Stores emits on `conn`, the caller's own connection to the store's file (the
    /// application's tables and the store's share it), in the transaction `conn` is in: the
    /// emits are stored if and only if that transaction commits, and this process's workers are
    /// woken at the commit. Outside a transaction, the emits are stored at once, atomically.
    ///
    /// To wake the workers at the commit this sets `conn`'s commit hook (rusqlite's
    /// [`Connection::commit_hook`]), replacing any the caller had set. Workers in other
    /// processes find the emits at their next poll.
    ///
    /// ```no_run
    /// # fn run(store: emitter::durable::sqlite::SqliteStore,
    /// #     emits: Vec<emitter::durable::NewEmit>) -> Result<(), Box<dyn std::error::Error>> {
    /// use emitter::durable::sqlite::rusqlite::Connection;
    ///
    /// let mut conn = Connection::open(store.path())?;
    /// let transaction = conn.transaction()?;
    /// transaction.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", [])?;
    /// store.insert_in(&transaction, &emits)?;
    /// transaction.commit()?; // the emits exist from here on, and workers are woken
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When `conn` is not a connection to the store's file, or a statement fails (then the
    /// caller's transaction should be rolled back).
    pub fn insert_in(
        &self,
        conn: &Connection,
        emits: &[NewEmit],
    ) -> Result<Inserted, BackendError> {
        self.check_same_file(conn)?;
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        let path = &self.inner.path;
        if !conn.is_autocommit() {
            let inserted = self.inner.insert_on(conn, emits)?;
            let inner = Arc::downgrade(&self.inner);
            conn.commit_hook(Some(move || {
                if let Some(inner) = inner.upgrade() {
                    inner.wake();
                }
                // Let the commit go on.
                false
            }));
            return Ok(inserted);
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|error| sql_error(path, "store emits", error))?;
        let inserted = self.inner.insert_on(conn, emits).and_then(|inserted| {
            conn.execute_batch("COMMIT")
                .map_err(|error| sql_error(path, "store emits", error))?;
            Ok(inserted)
        });
        if inserted.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if inserted.is_ok() {
            self.wake();
        }
        inserted
    }

    /// Refuses a connection to another file than the store's.
    fn check_same_file(&self, conn: &Connection) -> Result<(), BackendError> {
        let store = &self.inner.path;
        let same = conn.path().is_some_and(|path| {
            let path = std::path::Path::new(path);
            match (std::fs::canonicalize(path), std::fs::canonicalize(store)) {
                (Ok(path), Ok(store)) => path == store,
                _ => path == store,
            }
        });
        if same {
            return Ok(());
        }
        Err(BackendError::of(
            BackendErrorKind::Misconfigured,
            format!(
                "the connection given to store emits is not a connection to the SQLite store's \
                 file {} (it is to {}): open it with `Connection::open(store.path())`",
                store.display(),
                conn.path()
                    .filter(|path| !path.is_empty())
                    .unwrap_or("an in-memory database"),
            ),
        ))
    }
}

impl Durable<SqliteStore> {
    /// Emits `event` inside the caller's transaction on `conn`, a connection to the store's file:
    /// the deliveries exist if and only if the transaction commits, and this process's workers
    /// are woken at the commit (see [`SqliteStore::insert_in`]). Use it to emit "order placed"
    /// in the transaction that inserts the order, so that neither can exist without the other;
    /// in a transactional listener, `tx.with(|conn| backend.emit_in(conn, ...))` emits a
    /// follow-up event in the listener's transaction.
    ///
    /// The emitter must have been started with this backend (its table says which listeners
    /// the event goes to). Returns the emit's id.
    ///
    /// ```no_run
    /// # use emitter::durable::{sqlite::SqliteStore, Durable};
    /// # use emitter::{EmitOptions, Event};
    /// # #[derive(Event)] pub struct OrderPlaced { pub order: i64 }
    /// # fn run(backend: Durable<SqliteStore>) -> Result<(), Box<dyn std::error::Error>> {
    /// use emitter::durable::sqlite::rusqlite::Connection;
    ///
    /// let mut conn = Connection::open(backend.store().path())?;
    /// let transaction = conn.transaction()?;
    /// transaction.execute("INSERT INTO orders (id) VALUES (42)", [])?;
    /// backend.emit_in(&transaction, OrderPlaced { order: 42 }, EmitOptions::new())?;
    /// transaction.commit()?; // the order and its event, or neither
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::insert_in`], and when the event cannot be encoded or the emitter was
    /// not started.
    pub fn emit_in<E: crate::Event>(
        &self,
        conn: &Connection,
        event: E,
        options: crate::EmitOptions,
    ) -> Result<EmitId, crate::EmitError> {
        let emit = self.prepare(&event, options)?;
        let emit_id = emit.event.emit_id;
        self.store()
            .insert_in(conn, std::slice::from_ref(&emit))
            .map_err(|source| crate::EmitError::Backend {
                event_id: E::ID,
                source,
            })?;
        Ok(emit_id)
    }
}
