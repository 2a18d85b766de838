//! Which store a URL names, opened with the command line's connection options.

use std::path::PathBuf;

use clap::ArgMatches;
use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter::durable::redis::{RedisConfig, RedisStore};
use emitter::durable::sqlite::SqliteStore;
use emitter::durable::Tls;

use crate::failure::Failure;

/// An open store, of whichever kind the URL named (the Redis store, much the largest, boxed).
pub(crate) enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    Redis(Box<RedisStore>),
}

/// Runs `$body` with `$store` bound to the store inside an [`AnyStore`], whatever its kind: the
/// commands are written once, generic over [`Admin`](emitter::durable::Admin).
macro_rules! with_store {
    ($any:expr, |$store:ident| $body:expr) => {
        match $any {
            $crate::store::AnyStore::Sqlite($store) => $body,
            $crate::store::AnyStore::Postgres($store) => $body,
            $crate::store::AnyStore::Redis(boxed) => {
                let $store = &**boxed;
                $body
            }
        }
    };
}
pub(crate) use with_store;

/// The store's kind, from the URL's scheme, without reading anything else of it (the rest may
/// hold a password, and is never echoed).
enum Kind {
    Sqlite(PathBuf),
    Postgres,
    Redis,
}

fn kind(url: &str) -> Result<Kind, Failure> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some("sqlite") => {
            let path = &url["sqlite://".len()..];
            if path.is_empty() {
                return Err(Failure::usage(
                    "a SQLite URL names a file: sqlite://events.db (relative) or \
                     sqlite:///var/lib/app/events.db (absolute)",
                ));
            }
            Ok(Kind::Sqlite(PathBuf::from(path)))
        }
        Some("postgres" | "postgresql") => Ok(Kind::Postgres),
        Some("redis" | "rediss") => Ok(Kind::Redis),
        Some(other) => Err(Failure::usage(format!(
            "unknown store `{}://`: use sqlite://, postgres:// or redis:// (rediss:// for TLS)",
            other.escape_debug()
        ))),
        None => Err(Failure::usage(
            "the store URL has no scheme: use sqlite://PATH, postgres://... or redis://...",
        )),
    }
}

fn tls(matches: &ArgMatches) -> Option<Tls> {
    if let Some(path) = matches.get_one::<String>("ca-file") {
        return Some(Tls::CaFile(path.into()));
    }
    match matches.get_one::<String>("tls").map(String::as_str) {
        Some("require") => Some(Tls::Require),
        Some("disable") => Some(Tls::Disable),
        _ => None,
    }
}

/// Opens the store of `--url` (or `$EMITTER_URL`).
pub(crate) async fn open(matches: &ArgMatches) -> Result<AnyStore, Failure> {
    let url = matches.get_one::<String>("url").ok_or_else(|| {
        Failure::usage("which store? pass --url (or set EMITTER_URL): sqlite://PATH, postgres://... or redis://...")
    })?;
    let tls = tls(matches);
    let network_only = |option: &str| {
        matches.get_one::<String>(option).map(|_| {
            Failure::usage(format!(
                "--{option} applies to PostgreSQL and Redis stores only"
            ))
        })
    };
    match kind(url)? {
        Kind::Sqlite(path) => {
            if let Some(failure) = network_only("tls")
                .or_else(|| network_only("ca-file"))
                .or_else(|| network_only("schema"))
                .or_else(|| network_only("prefix"))
            {
                return Err(failure);
            }
            // Opening creates a missing file: an operator's typo must not make an empty store.
            if !path.is_file() {
                return Err(Failure::usage(format!(
                    "no SQLite store at {}: check the path (relative to {})",
                    path.display(),
                    std::env::current_dir()
                        .map(|dir| dir.display().to_string())
                        .unwrap_or_else(|_| "the current directory".to_owned())
                )));
            }
            Ok(AnyStore::Sqlite(SqliteStore::open(&path)?))
        }
        Kind::Postgres => {
            if let Some(failure) = network_only("prefix") {
                return Err(failure);
            }
            let mut config = PostgresConfig::new(url.as_str());
            if let Some(schema) = matches.get_one::<String>("schema") {
                config = config.schema(schema);
            }
            if let Some(tls) = tls {
                config = config.tls(tls);
            }
            Ok(AnyStore::Postgres(config.connect().await?))
        }
        Kind::Redis => {
            if let Some(failure) = network_only("schema") {
                return Err(failure);
            }
            let mut config = RedisConfig::new(url.as_str());
            if let Some(prefix) = matches.get_one::<String>("prefix") {
                config = config.prefix(prefix);
            }
            if let Some(tls) = tls {
                config = config.tls(tls);
            }
            Ok(AnyStore::Redis(Box::new(config.connect().await?)))
        }
    }
}
