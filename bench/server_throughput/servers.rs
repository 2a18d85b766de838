use emitter_tests::servers::{Postgres, Redis};

// Private servers. ------------------------------------------------------------------------------

/// A private server on 127.0.0.1, started by the tests' harness (`emitter_tests::servers`: the
/// same binaries and settings as the backends' tests), stopped on drop.
pub(crate) enum Server {
    Redis(Redis),
    Postgres(Postgres),
}

impl Server {
    pub(crate) fn redis() -> Result<Server, String> {
        Redis::start().map(Server::Redis).ok_or_else(|| {
            "redis-server not found (install Debian's redis-server, or pass --redis-url)".to_owned()
        })
    }

    pub(crate) fn postgres() -> Result<Server, String> {
        Postgres::start().map(Server::Postgres).ok_or_else(|| {
            "PostgreSQL not found (install Debian's postgresql, or pass --postgres-url)".to_owned()
        })
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Server::Redis(redis) => redis.url(),
            Server::Postgres(postgres) => postgres.url(),
        }
    }

    pub(crate) fn description(&self) -> String {
        match self {
            Server::Redis(redis) => format!(
                "private redis-server on 127.0.0.1:{}, no persistence (--save '' --appendonly no)",
                redis.port()
            ),
            Server::Postgres(postgres) => {
                format!(
                    "private postgres on 127.0.0.1:{}, fsync=off",
                    postgres.port()
                )
            }
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        match self {
            Server::Redis(redis) => redis.pid(),
            Server::Postgres(postgres) => postgres.pid(),
        }
    }
}
