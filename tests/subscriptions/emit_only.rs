//! An emit-only binary of the application of `tests/subscriptions.rs`: it defines the event and
//! links no listener at all (its emitter's table is empty), emits `SignedUp { n }` on a durable
//! store and stops once it is stored. `subscriptions.rs` runs it as a child process: the worker
//! in another binary must receive what it emits, by the subscriptions in the store.
//!
//! `subscriptions_emit_only <sqlite|postgres|redis> <file or URL> <namespace> <n>`.

use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{Emitter, Event};
use emitter_tests::children::{runtime, Kind};
use emitter_tests::with_store;

/// The event, as the worker binary defines it (the same id and fields).
#[derive(Event, Debug, Clone)]
#[event(id = "subs.signed_up")]
pub struct SignedUp {
    pub n: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, location, namespace, n] = args.as_slice() else {
        panic!("usage: subscriptions_emit_only <store> <location> <namespace> <n>");
    };
    let n: u64 = n.parse().expect("a number to emit");
    runtime().block_on(async {
        with_store!(Kind::parse(kind), location, namespace, |store| emit(
            store, n
        )
        .await);
    });
}

/// Emits `SignedUp { n }` from an emitter that delivers nothing and whose binary links no
/// listener, and stops once it is stored.
async fn emit<S: Store>(store: S, n: u64) {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    // No `.listeners(...)`: the table is every listener this binary links, and it links none.
    let emitter = Emitter::builder()
        .backend(backend)
        .start()
        .await
        .expect("the emit-only emitter starts");
    assert_eq!(
        emitter.table().listeners_of::<SignedUp>().count(),
        0,
        "this binary links no listener"
    );
    emitter
        .emit_async(SignedUp { n })
        .await
        .expect("the emit is stored");
    emitter.shutdown().await.expect("the emitter stops");
}
