//! `emitter`: see and steer the deliveries of a durable emitter store from a terminal.
//!
//! `emitter --url sqlite://events.db status`; `emitter --help` lists the commands, the options
//! and the exit codes. `emitter board` serves the same operations in a browser.

mod args;
mod board;
mod commands;
mod failure;
mod store;
mod table;
mod times;

use std::io::Write;
use std::process::ExitCode;

use crate::failure::{Code, Failure};
use crate::store::with_store;

fn main() -> ExitCode {
    let matches = match args::command().try_get_matches() {
        Ok(matches) => matches,
        Err(error) => {
            // Help and version are answers, not failures; clap prints both.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(Code::Usage as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("emitter: cannot start the async runtime: {error}");
            return ExitCode::from(Code::Store as u8);
        }
    };
    match runtime.block_on(run(&matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("emitter: {failure}");
            }
            ExitCode::from(failure.code as u8)
        }
    }
}

async fn run(matches: &clap::ArgMatches) -> Result<(), Failure> {
    let any = store::open(matches).await?;
    if let Some(("board", args)) = matches.subcommand() {
        return board::serve(any, args).await;
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let mut out = commands::Out {
        out: &mut lock,
        json: matches.get_flag("json"),
    };
    with_store!(&any, |store| commands::run(store, matches, &mut out).await)?;
    lock.flush()?;
    Ok(())
}
