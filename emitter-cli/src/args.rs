//! The command line: global options (which store, how to connect, how to answer) and one
//! subcommand per operation.

use clap::{Arg, ArgAction, Command};

const ABOUT: &str = "See and steer the deliveries of a durable emitter store: what waits, runs, \
                     is scheduled or lies dead, per listener; show, replay, discard, cancel; \
                     pause and resume a listener; find orphaned listeners; or serve the board.";

const AFTER_HELP: &str = "Exit codes: 0 done; 1 the store failed; 2 bad usage or input; \
                          3 not found; 4 refused (a running delivery, a dead letter to \
                          cancel, or a destructive command not confirmed).\n\
                          Times (--after, --before) are RFC 3339 instants \
                          (2024-05-01T12:00:00Z) or how long ago (90s, 15m, 2h, 3d).";

fn filters(command: Command) -> Command {
    command
        .arg(
            Arg::new("listener")
                .long("listener")
                .value_name("NAME")
                .help("Only this listener's"),
        )
        .arg(
            Arg::new("event")
                .long("event")
                .value_name("ID")
                .help("Only this event's (its id, such as user_created)"),
        )
        .arg(
            Arg::new("emit")
                .long("emit")
                .value_name("EMIT_ID")
                .help("Only this emit's (32 hexadecimal digits)"),
        )
        .arg(
            Arg::new("after")
                .long("after")
                .value_name("TIME")
                .help("Only those due (dead letters: failed) at or after TIME"),
        )
        .arg(
            Arg::new("before")
                .long("before")
                .value_name("TIME")
                .help("Only those due (dead letters: failed) before TIME"),
        )
}

fn yes(command: Command) -> Command {
    command.arg(
        Arg::new("yes")
            .long("yes")
            .short('y')
            .action(ArgAction::SetTrue)
            .help("Do it without asking for confirmation"),
    )
}

/// A dead-letter command (`replay`, `discard`): one by id, or every one that matches `--all`.
fn dead_letters(name: &'static str, about: &'static str) -> Command {
    yes(filters(
        Command::new(name)
            .about(about)
            .arg(
                Arg::new("id")
                    .value_name("ID")
                    .required_unless_present("all")
                    .conflicts_with("all")
                    .help("The dead letter's id (as `deliveries --state dead` lists it)"),
            )
            .arg(
                Arg::new("all")
                    .long("all")
                    .action(ArgAction::SetTrue)
                    .help("Every dead letter the filters match (all of them without filters)"),
            ),
    ))
}

pub(crate) fn command() -> Command {
    Command::new("emitter")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .after_help(AFTER_HELP)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("url")
                .long("url")
                .global(true)
                .value_name("URL")
                .env("EMITTER_URL")
                .hide_env_values(true)
                .help(
                    "The store: sqlite://PATH, postgres://USER:PASSWORD@HOST/DB or \
                     redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS); its password \
                     is never printed",
                ),
        )
        .arg(
            Arg::new("schema")
                .long("schema")
                .global(true)
                .value_name("NAME")
                .help("PostgreSQL: the schema of the store's tables [default: emitter]"),
        )
        .arg(
            Arg::new("prefix")
                .long("prefix")
                .global(true)
                .value_name("PREFIX")
                .help("Redis: the prefix of the store's keys [default: emitter]"),
        )
        .arg(
            Arg::new("tls")
                .long("tls")
                .global(true)
                .value_name("MODE")
                .value_parser(["disable", "require"])
                .help(
                    "PostgreSQL and Redis: TLS, verified against the system's roots \
                     (require), or plain TCP (disable) [default: from the URL]",
                ),
        )
        .arg(
            Arg::new("ca-file")
                .long("ca-file")
                .global(true)
                .value_name("PEM")
                .help("PostgreSQL and Redis: TLS, verified against this PEM file's certificates"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .global(true)
                .action(ArgAction::SetTrue)
                .help("Answer in JSON, for scripts"),
        )
        .subcommand(Command::new("status").about(
            "Deliveries per listener and state, paused listeners, the oldest waiting, the \
             workers",
        ))
        .subcommand(filters(
            Command::new("deliveries")
                .about("List deliveries in one state, a page at a time")
                .arg(
                    Arg::new("state")
                        .long("state")
                        .value_name("STATE")
                        .value_parser(["waiting", "scheduled", "running", "dead"])
                        .default_value("waiting")
                        .help("Which deliveries"),
                )
                .arg(
                    Arg::new("limit")
                        .long("limit")
                        .value_name("N")
                        .value_parser(clap::value_parser!(u16).range(1..=1000))
                        .default_value("50")
                        .help("The most on a page"),
                )
                .arg(
                    Arg::new("cursor")
                        .long("cursor")
                        .value_name("CURSOR")
                        .help("Where the page starts: the cursor the page before printed"),
                ),
        ))
        .subcommand(
            Command::new("show")
                .about("One delivery or dead letter in full: payload, attempts, error, history")
                .arg(Arg::new("id").value_name("ID").required(true)),
        )
        .subcommand(dead_letters(
            "replay",
            "Send dead letters back to their listener, due now, attempts from zero",
        ))
        .subcommand(dead_letters("discard", "Delete dead letters for good"))
        .subcommand(yes(Command::new("cancel")
            .about("Delete a waiting or scheduled delivery: it will not run")
            .arg(Arg::new("id").value_name("ID").required(true))))
        .subcommand(
            Command::new("pause")
                .about("Stop every worker from claiming a listener's deliveries (emits are still stored)")
                .arg(Arg::new("listener").value_name("LISTENER").required(true)),
        )
        .subcommand(
            Command::new("resume")
                .about("Let workers claim a paused listener's deliveries again")
                .arg(Arg::new("listener").value_name("LISTENER").required(true)),
        )
        .subcommand(
            Command::new("orphans")
                .about(
                    "Listeners with deliveries stored that no running worker runs (removed or \
                     renamed by a deploy)",
                )
                .subcommand(yes(Command::new("discard")
                    .about("Delete an orphan's deliveries that are not running, and its dead letters")
                    .arg(Arg::new("listener").value_name("LISTENER").required(true))))
                .subcommand(yes(Command::new("rehome")
                    .about("Give an orphan's deliveries that are not running, and its dead letters, to another listener")
                    .arg(Arg::new("from").value_name("FROM").required(true))
                    .arg(Arg::new("to").value_name("TO").required(true)))),
        )
        .subcommand(Command::new("subscriptions").about(
            "What the workers subscribed: the events each listener is sent (emitting processes \
             route by them)",
        ))
        .subcommand(yes(Command::new("unsubscribe")
            .about("Stop routing emits to a listener no worker runs any more (its stored deliveries stay)")
            .arg(Arg::new("listener").value_name("LISTENER").required(true))))
        .subcommand(
            Command::new("board")
                .about("Serve the board: the same operations in a browser, until Ctrl-C")
                .arg(
                    Arg::new("listen")
                        .long("listen")
                        .value_name("ADDRESS")
                        .default_value("127.0.0.1:8080")
                        .help("Where to listen (serve it over TLS, through a proxy, beyond loopback)"),
                )
                .arg(
                    Arg::new("allow-writes")
                        .long("allow-writes")
                        .action(ArgAction::SetTrue)
                        .help(
                            "Allow writes to whoever has the token in $EMITTER_BOARD_TOKEN (at \
                             least 16 characters); read-only otherwise",
                        ),
                ),
        )
}
