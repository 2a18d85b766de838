//! The store contract suite: every guarantee of [`Store`] as one test, for any store.
//!
//! A store passes the contract when every case passes on it. The stores of this crate run it,
//! and so can a store of your own: implement [`Harness`] (fresh storage, and store handles
//! on it), then let [`store_contract!`](crate::store_contract) write one `#[test]` per case:
//!
//! ```ignore
//! // tests/store_contract.rs of a crate with its own store, `MyStore`
//! // (Cargo.toml: emitter = { version = "...", features = ["store-contract"] }).
//! use emitter::durable::testing::Harness;
//! use emitter::BackendError;
//!
//! struct MyHarness;
//!
//! impl Harness for MyHarness {
//!     type Store = MyStore;
//!     type Storage = tempfile::TempDir;
//!
//!     async fn storage(&self) -> Option<tempfile::TempDir> {
//!         tempfile::tempdir().ok()
//!     }
//!
//!     async fn open(&self, dir: &tempfile::TempDir) -> Result<MyStore, BackendError> {
//!         MyStore::open(dir.path())
//!     }
//! }
//!
//! emitter::store_contract!(MyHarness);
//! ```
//!
//! Each case builds a multi-thread tokio runtime of its own, opens fresh storage, and checks
//! one guarantee through direct calls of the [`Store`] methods (no engine). Cases about leases,
//! delays and key expiry wait for real time (about a second each), with margins that only a
//! stall of the machine longer than a lease could upset. Adding a case is adding one `pub async
//! fn` taking `&impl Harness` to one of this module's files and its name to the macro.
//!
//! A store that also implements [`Admin`](crate::durable::Admin), the operator's side, runs
//! its cases too with [`admin_contract!`](crate::admin_contract) (same harness).
//!
//! Available with the cargo feature `store-contract`.

mod claims;
mod damage;
mod keys;
mod leases;
mod listing;
mod order;
mod outcomes;
mod steering;
mod subscriptions;
mod suspects;

use std::future::Future;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

pub use claims::*;
pub use damage::*;
pub use keys::*;
pub use leases::*;
pub use listing::*;
pub use order::*;
pub use outcomes::*;
pub use steering::*;
pub use subscriptions::*;
pub use suspects::*;

use super::{Claimed, Counts, NewEmit, Receipt, Route, Setup, Store, StoredEvent};
use crate::emit_id::EmitId;
use crate::error::BackendError;

/// What the contract suite needs of a store: fresh storage for each case, and store handles on
/// it. Two handles on one storage stand for two processes sharing a store.
pub trait Harness: Sync {
    /// The store under test.
    type Store: Store;
    /// One isolated storage: a file, a database schema, a key prefix, an in-memory map.
    type Storage: Send + Sync;

    /// Storage nobody else uses, or `None` when what it needs (a server, say) is missing: the
    /// case then returns at once, saying so on stderr.
    fn storage(&self) -> impl Future<Output = Option<Self::Storage>> + Send;

    /// A new store handle on `storage`, not yet [opened](crate::durable::Store::open).
    fn open(
        &self,
        storage: &Self::Storage,
    ) -> impl Future<Output = Result<Self::Store, BackendError>> + Send;

    /// Stores, for `listener`, a due delivery that the store cannot read (as damage, or another
    /// program writing into its storage, would leave). `false` when the store cannot hold such
    /// a delivery (its storage is typed, say): the case about it is then skipped.
    fn corrupt(
        &self,
        storage: &Self::Storage,
        listener: &'static str,
    ) -> impl Future<Output = bool> + Send {
        let _ = (storage, listener);
        async { false }
    }

    /// Marks `storage`, which the store has opened once, as written by a newer version of the
    /// store. `false` when the store keeps no schema version: the case about it is skipped.
    fn write_newer_schema_version(
        &self,
        storage: &Self::Storage,
    ) -> impl Future<Output = bool> + Send {
        let _ = storage;
        async { false }
    }
}

/// Writes one `#[test]` per case of the contract suite for a [`Harness`]:
/// `emitter::store_contract!(MyHarness);` (the expression is evaluated once per test).
#[macro_export]
macro_rules! store_contract {
    ($harness:expr) => {
        $crate::store_contract!(@cases $harness;
            insert_stores_one_delivery_per_distinct_listener,
            claim_takes_due_deliveries_of_the_named_listeners_up_to_the_limit,
            empty_calls_do_nothing,
            ack_removes_deliveries_and_ignores_receipts_it_did_not_issue,
            an_expired_lease_is_claimed_again_as_the_next_attempt,
            a_stale_receipt_changes_nothing,
            a_receipt_whose_lease_ran_out_unclaimed_still_acknowledges,
            extend_keeps_a_claim_past_its_first_lease,
            concurrent_claimers_take_each_delivery_exactly_once,
            retry_releases_the_delivery_until_its_time_keeping_its_attempts,
            postpone_gives_the_delivery_back_until_its_time_without_an_attempt,
            dead_letters_keep_the_event_and_are_replayed_or_discarded,
            a_dead_letter_counts_every_claim,
            a_delayed_delivery_is_claimed_once_due,
            idempotency_keys_skip_duplicates_within_and_across_batches,
            an_expired_idempotency_key_is_accepted_again,
            a_delivery_the_store_cannot_read_is_dead_lettered_not_handed_out,
            storage_of_a_newer_schema_version_is_refused,
            wait_for_work_returns_by_its_timeout,
            released_deliveries_are_claimable_at_once_as_the_same_attempt,
            unfinished_counts_the_deliveries_of_a_range_of_emits,
            the_trace_context_travels_with_the_event,
            one_at_a_time_means_in_emit_order_across_handles,
            a_retry_holds_back_the_deliveries_behind_it,
            a_concurrency_limit_holds_across_handles,
            an_expired_lease_of_a_limited_listener_comes_first,
            a_delayed_delivery_takes_its_place_in_order_when_due,
            a_claim_counts_the_crashes_since_the_last_failed_attempt,
            a_suspect_is_claimed_alone,
            subscriptions_replace_those_of_the_named_listeners_only,
            the_backlog_counts_unfinished_deliveries_per_listener_and_event,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let harness = $harness;
                $crate::durable::testing::block_on($crate::durable::testing::$case(&harness));
            }
        )*
    };
}

/// Writes one `#[test]` per case of the operator's part of the contract suite, for a
/// [`Harness`] whose store implements [`Admin`](crate::durable::Admin):
/// `emitter::admin_contract!(MyHarness);`, beside `emitter::store_contract!(MyHarness);`.
#[macro_export]
macro_rules! admin_contract {
    ($harness:expr) => {
        $crate::store_contract!(@cases $harness;
            deliveries_are_listed_in_their_state,
            pages_list_each_delivery_once_in_order,
            filters_narrow_a_listing,
            a_delivery_is_shown_in_full_by_its_id,
            cancel_deletes_waiting_and_scheduled_deliveries_only,
            dead_letters_are_replayed_and_discarded_by_filter,
            a_paused_listener_is_claimed_by_no_handle_until_resumed,
            heartbeats_tell_which_workers_run_and_what_they_did,
            orphans_are_rehomed_or_discarded,
        );
    };
}

/// Runs a case on a multi-thread tokio runtime of its own (two workers: claimers of the
/// concurrency case run in parallel).
pub fn block_on<F: Future<Output = ()>>(case: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(case),
        Err(error) => panic!("cannot build a tokio runtime for the store contract: {error}"),
    }
}

/// The listeners the cases deliver to; [`Store::open`](crate::durable::Store::open) is told
/// about all but `C`, and that `ONE` runs one delivery at a time and `TWO` two.
const A: &str = "contract.a";
const B: &str = "contract.b";
const C: &str = "contract.c";
const ONE: &str = "contract.one_at_a_time";
const TWO: &str = "contract.two_at_a_time";

/// A lease a case waits out: long enough that a loaded machine makes its next call within it.
const SHORT: Duration = Duration::from_millis(800);
/// A lease no case waits out.
const LONG: Duration = Duration::from_secs(600);
/// How much longer than a lease or a delay a case waits before it counts on it having passed.
const MARGIN: Duration = Duration::from_millis(300);
/// Key retention of every case but the one about expiry.
const RETENTION: Duration = Duration::from_secs(3600);

/// A store on fresh storage, opened with the routes of `A` and `B` and `retention`, and the
/// storage; `None` when the harness has no storage (the case is skipped).
async fn fresh<H: Harness>(harness: &H, retention: Duration) -> Option<(H::Storage, H::Store)> {
    let Some(storage) = harness.storage().await else {
        eprintln!("*** SKIPPED: the harness has no storage for this case ***");
        return None;
    };
    let store = opened(harness, &storage, retention).await;
    Some((storage, store))
}

/// Another handle on `storage`, opened as [`fresh`] opens.
async fn opened<H: Harness>(harness: &H, storage: &H::Storage, retention: Duration) -> H::Store {
    let store = harness
        .open(storage)
        .await
        .unwrap_or_else(|error| panic!("the harness cannot open its storage: {error}"));
    store
        .open(&setup(retention))
        .await
        .unwrap_or_else(|error| panic!("Store::open failed on fresh storage: {error}"));
    store
}

fn setup(retention: Duration) -> Setup {
    let limit = |n| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    Setup::new(
        vec![Route {
            event_id: "contract.event",
            listeners: vec![A, B, ONE, TWO],
        }],
        retention,
    )
    .concurrency(ONE, limit(1))
    .concurrency(TWO, limit(2))
}

/// Event `n`: a payload that is not even UTF-8 (stores keep bytes), an emit id with its high
/// bits set, an emit time to the millisecond (what stores keep), and a version from 1 to 3 (the
/// events of version 1 are stored as events of before versions were, where a store tells them
/// apart).
fn event(n: u64) -> StoredEvent {
    let mut payload = format!("{{\"n\":{n}}}").into_bytes();
    payload.extend([0xff, 0x00, 0xfe]);
    StoredEvent::new(
        "contract.event",
        EmitId::from_u128((u128::from(u64::MAX - n) << 64) | u128::from(n)),
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + n),
        payload,
    )
    .with_version(u32::try_from(1 + n % 3).unwrap_or(1))
}

/// An emit of event `n` to `listeners`, due at `run_at`, with an optional idempotency key.
fn emit(n: u64, listeners: &[&'static str], run_at: SystemTime, key: Option<&str>) -> NewEmit {
    NewEmit::new(event(n), listeners.to_vec(), run_at, key.map(str::to_owned))
}

/// An emit of event `n` to `A`, due now.
fn due(n: u64) -> NewEmit {
    emit(n, &[A], SystemTime::now(), None)
}

/// Which event a claim carries: the `n` of [`event`].
fn n_of(claimed: &Claimed) -> u64 {
    n_of_emit(claimed.event.emit_id)
}

/// The `n` of [`event`] whose emit id is `emit_id`.
fn n_of_emit(emit_id: EmitId) -> u64 {
    u64::try_from(emit_id.as_u128() & u128::from(u64::MAX)).unwrap_or(u64::MAX)
}

/// The `n`s of `claims`, sorted.
fn ns(claims: &[Claimed]) -> Vec<u64> {
    let mut ns: Vec<u64> = claims.iter().map(n_of).collect();
    ns.sort_unstable();
    ns
}

fn receipts(claims: &[Claimed]) -> Vec<Receipt> {
    claims
        .iter()
        .map(|claimed| claimed.receipt.clone())
        .collect()
}

async fn insert(store: &impl Store, emits: &[NewEmit]) -> (usize, usize) {
    let inserted = store
        .insert(emits)
        .await
        .unwrap_or_else(|error| panic!("insert failed: {error}"));
    (inserted.stored, inserted.duplicates)
}

async fn claim(
    store: &impl Store,
    worker: &str,
    listeners: &[&'static str],
    limit: usize,
    lease: Duration,
) -> Vec<Claimed> {
    store
        .claim(worker, listeners, limit, lease)
        .await
        .unwrap_or_else(|error| panic!("claim failed: {error}"))
}

/// (waiting, leased, dead).
async fn counts(store: &impl Store) -> (u64, u64, u64) {
    let Counts {
        waiting,
        leased,
        dead,
    } = store
        .counts()
        .await
        .unwrap_or_else(|error| panic!("counts failed: {error}"));
    (waiting, leased, dead)
}

/// Unwraps a call that returns nothing, naming it when it failed.
fn ok(call: &str, result: Result<(), BackendError>) {
    if let Err(error) = result {
        panic!("{call} failed: {error}");
    }
}
