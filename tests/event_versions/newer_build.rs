//! A newer build of the application of `tests/event_versions.rs`: its `versions.profile` is at
//! version 4 (a required `country`, `"unknown"` for older profiles). `event_versions.rs` runs it
//! as a child process, to emit a profile of version 4 that its own worker (version 3) must leave,
//! and then as the newer worker that delivers it.
//!
//! `newer_build emit|work <sqlite|postgres|redis> <file or URL> <namespace>`. `work` prints one
//! line per delivery (`profile <login> <first> <last> <country>`) and exits once nothing is left
//! unfinished in the store.

use std::time::Duration;

use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event};
use emitter_tests::children::{runtime, Kind};
use emitter_tests::with_store;
use serde_json::Value;

#[path = "shapes.rs"]
mod shapes;
use shapes::{profile_v1_to_v2, profile_v2_to_v3};

/// Version 3 to 4: a required `country`, unknown for the profiles stored before it.
fn profile_v3_to_v4(mut value: Value) -> Result<Value, String> {
    value
        .as_object_mut()
        .ok_or("a profile of version 3 is a JSON object")?
        .insert("country".to_owned(), "unknown".into());
    Ok(value)
}

#[derive(Event, Debug)]
#[event(
    id = "versions.profile",
    version = 4,
    upcast(from = 1, with = profile_v1_to_v2),
    upcast(from = 2, with = profile_v2_to_v3),
    upcast(from = 3, with = profile_v3_to_v4)
)]
pub struct Profile {
    pub login: String,
    pub first: String,
    pub last: String,
    pub country: String,
}

#[listener(events = [Profile], name = "versions.profile_seen")]
async fn profile_seen(login: &str, first: &str, last: &str, country: &str) {
    println!("profile {login} {first} {last} {country}");
}

/// How long a step may take: a liveness bound.
const PATIENCE: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, kind, location, namespace] = args.as_slice() else {
        panic!("usage: newer_build emit|work <store> <location> <namespace>");
    };
    runtime().block_on(async {
        with_store!(Kind::parse(kind), location, namespace, |store| run(
            store, mode
        )
        .await);
    });
}

async fn run<S: Store>(store: S, mode: &str) {
    let deliver = mode == "work";
    let config = DurableConfig::default()
        .poll_interval(Duration::from_millis(20))
        .deliver(deliver);
    let backend = Durable::with_config(store, config);
    let emitter = Emitter::builder()
        .listeners(listeners![profile_seen])
        .backend(backend.clone())
        .start()
        .await
        .expect("the emitter starts");
    if deliver {
        tokio::time::timeout(PATIENCE, backend.wait_settled())
            .await
            .expect("the store settles")
            .expect("the store answers");
    } else {
        emitter
            .emit_async(Profile {
                login: "newcomer".to_owned(),
                first: "Nia".to_owned(),
                last: "Okafor".to_owned(),
                country: "KE".to_owned(),
            })
            .await
            .expect("the profile is stored");
    }
    emitter.shutdown().await.expect("shutdown");
}
