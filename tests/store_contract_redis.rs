//! The store contract suite on the Redis Streams store: one private server for the whole
//! target (`servers.rs`), a key prefix of its own per case.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use emitter::durable::redis::{RedisConfig, RedisStore};
use emitter::durable::testing::Harness;
use emitter::BackendError;
use emitter_tests::servers::Redis;

fn server() -> Option<&'static Redis> {
    static SERVER: OnceLock<Option<Redis>> = OnceLock::new();
    SERVER.get_or_init(Redis::start).as_ref()
}

struct RedisHarness;

impl Harness for RedisHarness {
    type Store = RedisStore;
    /// The key prefix.
    type Storage = String;

    async fn storage(&self) -> Option<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        server()?;
        Some(format!("contract{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    async fn open(&self, prefix: &String) -> Result<RedisStore, BackendError> {
        let server = server().expect("the server runs");
        RedisConfig::new(server.url())
            .prefix(prefix)
            .connect()
            .await
    }

    /// An entry without the fields the store writes.
    async fn corrupt(&self, prefix: &String, listener: &'static str) -> bool {
        let server = server().expect("the server runs");
        let key = format!("{prefix}:listener:{listener}");
        let reply = server.command(&["XADD", &key, "*", "garbage", "only"]);
        assert!(reply.starts_with('$'), "{reply}");
        true
    }

    async fn write_newer_schema_version(&self, prefix: &String) -> bool {
        let server = server().expect("the server runs");
        server.command(&["SET", &format!("{prefix}:schema"), "99"]) == "+OK\r\n"
    }
}

emitter::store_contract!(RedisHarness);
emitter::admin_contract!(RedisHarness);
