//! The conformance suite on the Redis Streams store: every case, against a private
//! `redis-server` started by the test (one server for the whole target, one key prefix per case).

#[macro_use]
mod conformance;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use emitter::durable::redis::{RedisConfig, RedisStore};
use emitter_tests::servers::Redis;

fn server() -> Option<&'static Redis> {
    static SERVER: OnceLock<Option<Redis>> = OnceLock::new();
    SERVER.get_or_init(Redis::start).as_ref()
}

/// A key prefix of its own per case, on the shared server.
struct RedisKit;

struct RedisStorage {
    url: String,
    prefix: String,
}

impl conformance::Kit for RedisKit {
    type Store = RedisStore;
    type Storage = RedisStorage;

    fn available(&self) -> bool {
        server().is_some()
    }

    async fn storage(&self) -> RedisStorage {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server().expect("the server is available");
        RedisStorage {
            url: server.url(),
            prefix: format!("conformance{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl conformance::Storage for RedisStorage {
    type Store = RedisStore;

    async fn open(&self) -> RedisStore {
        RedisConfig::new(&self.url)
            .prefix(&self.prefix)
            .connect()
            .await
            .expect("connects")
    }
}

durable_cases!(RedisKit);
