//! `emitter board`: the board (`emitter::board`) over the store, served until Ctrl-C.

use clap::ArgMatches;
use emitter::board::Board;
use emitter::durable::{Admin, Durable, DurableConfig};

use crate::failure::Failure;
use crate::store::AnyStore;

/// The shortest token `--allow-writes` takes.
const SHORTEST_TOKEN: usize = 16;

pub(crate) async fn serve(any: AnyStore, args: &ArgMatches) -> Result<(), Failure> {
    match any {
        AnyStore::Sqlite(store) => serve_store(store, args).await,
        AnyStore::Postgres(store) => serve_store(store, args).await,
        AnyStore::Redis(store) => serve_store(*store, args).await,
    }
}

async fn serve_store<S: Admin>(store: S, args: &ArgMatches) -> Result<(), Failure> {
    // A backend that delivers nothing: the board only reads and steers the store.
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let mut board = Board::new(backend);
    let writes = args.get_flag("allow-writes");
    if writes {
        let token = std::env::var("EMITTER_BOARD_TOKEN").unwrap_or_default();
        if token.chars().count() < SHORTEST_TOKEN {
            return Err(Failure::usage(format!(
                "--allow-writes needs a token of at least {SHORTEST_TOKEN} characters in \
                 $EMITTER_BOARD_TOKEN (for example: export EMITTER_BOARD_TOKEN=$(openssl rand \
                 -hex 32))"
            )));
        }
        board = board.allow_writes(token);
    }
    let address = args
        .get_one::<String>("listen")
        .map_or("127.0.0.1:8080", String::as_str);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| Failure::usage(format!("cannot listen on {address}: {error}")))?;
    let bound = listener.local_addr()?;
    eprintln!(
        "emitter: the board is on http://{bound}/ ({}); Ctrl-C stops it",
        if writes {
            "writes need the token"
        } else {
            "read-only"
        }
    );
    axum::serve(listener, board.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
