//! The `custom_store` example: its store passes the store contract suite, its operator's part
//! included, the same as the stores of the crate, and an emitter delivers through it.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the tests call its functions"
)]
#[path = "../examples/custom_store.rs"]
pub mod example;

use emitter::durable::testing::Harness;
use emitter::durable::Counts;
use emitter::BackendError;
use example::MapStore;

/// Each case a map of its own; a second handle on it is a clone.
struct MapHarness;

impl Harness for MapHarness {
    type Store = MapStore;
    type Storage = MapStore;

    async fn storage(&self) -> Option<MapStore> {
        Some(MapStore::default())
    }

    async fn open(&self, storage: &MapStore) -> Result<MapStore, BackendError> {
        Ok(storage.clone())
    }
}

emitter::store_contract!(MapHarness);
emitter::admin_contract!(MapHarness);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emitter_delivers_through_the_example_store_and_leaves_it_empty() {
    let counts = example::run().await.unwrap();
    assert_eq!(counts, Counts::default());
}
