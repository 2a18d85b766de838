//! The command line: which backends, sides, worker counts and sizes to run.

use crate::{EVENTS, QUICK_EVENTS, QUICK_ROUNDS, ROUNDS, WORKERS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Redis,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::Postgres => "postgres",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Backend> {
        match name {
            "redis" => Some(Backend::Redis),
            "postgres" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Emitter,
    Baseline,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Emitter => "emitter",
            Side::Baseline => "baseline",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Side> {
        match name {
            "emitter" => Some(Side::Emitter),
            "baseline" => Some(Side::Baseline),
            _ => None,
        }
    }
}

pub(crate) const USAGE: &str =
    "usage: server_throughput [--quick] [--profile] [--events N] [--rounds R] \
                     [--workers 1,2,4] [--backend redis|postgres] [--side emitter|baseline] \
                     [--redis-url URL] [--postgres-url URL]";

pub(crate) struct Options {
    pub(crate) events: u64,
    pub(crate) rounds: usize,
    pub(crate) workers: Vec<usize>,
    pub(crate) backends: Vec<Backend>,
    /// Both (the default), or one alone: to look at one side with `perf` or server statistics.
    pub(crate) sides: Vec<Side>,
    pub(crate) profile: bool,
    pub(crate) redis_url: Option<String>,
    pub(crate) postgres_url: Option<String>,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
        let mut quick = false;
        let mut events = None;
        let mut rounds = None;
        let mut options = Options {
            events: EVENTS,
            rounds: ROUNDS,
            workers: WORKERS.to_vec(),
            backends: vec![Backend::Redis, Backend::Postgres],
            sides: vec![Side::Emitter, Side::Baseline],
            profile: false,
            redis_url: None,
            postgres_url: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("`{arg}` needs a value"))
            };
            match arg.as_str() {
                "--quick" => quick = true,
                "--profile" => options.profile = true,
                "--events" => events = Some(number(arg, &value()?)?),
                "--rounds" => rounds = Some(number(arg, &value()?)?),
                "--workers" => {
                    options.workers = value()?
                        .split(',')
                        .map(|count| number(arg, count))
                        .collect::<Result<_, _>>()?;
                }
                "--backend" => {
                    let name = value()?;
                    let backend =
                        Backend::parse(&name).ok_or_else(|| format!("unknown backend `{name}`"))?;
                    options.backends = vec![backend];
                }
                "--side" => {
                    let name = value()?;
                    let side =
                        Side::parse(&name).ok_or_else(|| format!("unknown side `{name}`"))?;
                    options.sides = vec![side];
                }
                "--redis-url" => options.redis_url = Some(value()?),
                "--postgres-url" => options.postgres_url = Some(value()?),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        options.events = events.map_or(if quick { QUICK_EVENTS } else { EVENTS }, |n| n as u64);
        options.rounds = rounds.unwrap_or(if quick { QUICK_ROUNDS } else { ROUNDS });
        if options.workers.contains(&0) || options.events == 0 {
            return Err("workers and events must be at least 1".to_owned());
        }
        Ok(options)
    }
}

pub(crate) fn number(arg: &str, text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{arg}` takes a number, not `{text}`"))
}

// The coordinator. ------------------------------------------------------------------------------
