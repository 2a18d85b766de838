//! Pausing a listener on one worker process stops its deliveries on every worker process of that
//! store within 2 s, while its emits keep being stored and the other listeners keep running;
//! resuming on another worker process lets them deliver what waited. Once on PostgreSQL, once on
//! Redis (the stores shared by several processes).
//!
//! The workers are this test binary run again (`pause_worker`, a test that does nothing unless
//! [`STORE`] is set). Each reads commands on its stdin (`pause`, `resume`; its end shuts the
//! worker down) and appends to a log the parent reads: every listener run, with the wall-clock
//! time it started (the processes share the machine's clock), and each command done. The
//! contract suite's `a_paused_listener_is_claimed_by_no_handle_until_resumed` checks the same
//! promise claim by claim; this test checks it through the engine, as an operator sees it.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use emitter::durable::postgres::PostgresConfig;
use emitter::durable::redis::RedisConfig;
use emitter::durable::{Admin, Durable, DurableConfig};
use emitter::{listener, listeners, Emitter, Event, EventMeta, State};
use emitter_tests::children::{self, runtime, Kind, RunLog};
use emitter_tests::servers::{Postgres, Redis};
use emitter_tests::with_store;

const PAUSED: &str = "pause_across.paused";
const STEADY: &str = "pause_across.steady";

/// Events per batch.
const BATCH: u64 = 20;

/// How long after `pause` returns a worker may still start one of the listener's deliveries
/// (one it had claimed before): the promise.
const GRACE: Duration = Duration::from_secs(2);

/// How long to wait for what must come: a liveness bound, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

const NAMESPACE: &str = "pause_across";

/// Set in a worker's environment to `postgres` or `redis`.
const STORE: &str = "EMITTER_PAUSE_STORE";
/// Set in a worker's environment to the server's URL.
const URL: &str = "EMITTER_PAUSE_URL";
/// Set in a worker's environment to the log's path.
const LOG: &str = "EMITTER_PAUSE_LOG";
/// Set in a worker's environment to its id.
const WORKER: &str = "EMITTER_PAUSE_WORKER";

/// The worker test's name, for `--exact`.
const CHILD: &str = "pause_worker";

const WORKERS: [&str; 2] = ["one", "two"];

#[derive(Event, Debug, Clone)]
#[event(id = "pause_across.tick")]
pub struct Tick {
    pub n: u64,
}

/// Microseconds since the epoch: a time every process of the machine reads alike.
fn now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_micros()
}

/// A worker's log: a line per run (`run <worker> <listener> <n> <µs>`) and per command done
/// (`<command> <worker> <µs>`, `ready <worker> <µs>`).
#[derive(Clone)]
struct Log {
    runs: RunLog,
    worker: String,
}

impl Log {
    fn run(&self, n: u64, meta: &EventMeta) {
        self.runs.append(&format!(
            "run {} {} {n} {}",
            self.worker,
            meta.listener(),
            now()
        ));
    }

    fn did(&self, what: &str) {
        self.runs
            .append(&format!("{what} {} {}", self.worker, now()));
    }
}

#[listener(events = [Tick], name = "pause_across.paused")]
async fn paused(n: u64, meta: EventMeta, State(log): State<Log>) {
    log.run(n, &meta);
}

#[listener(events = [Tick], name = "pause_across.steady")]
async fn steady(n: u64, meta: EventMeta, State(log): State<Log>) {
    log.run(n, &meta);
}

// ---------------------------------------------------------------------------------------------
// The worker.

/// A worker process of the tests below; returns at once unless [`STORE`] is set.
#[test]
fn pause_worker() {
    let Ok(kind) = std::env::var(STORE) else {
        return;
    };
    let env = |name: &str| std::env::var(name).expect("the parent sets the worker's environment");
    let kind = Kind::parse(&kind);
    let log = Log {
        runs: RunLog::open(Path::new(&env(LOG))),
        worker: env(WORKER),
    };
    runtime().block_on(async {
        with_store!(kind, &env(URL), NAMESPACE, |store| serve(store, log).await)
    });
}

async fn serve<S: Admin>(store: S, log: Log) {
    let backend = Durable::with_config(store, DurableConfig::default().worker_id(&log.worker));
    let emitter = Emitter::builder()
        .listeners(listeners![paused, steady])
        .state(log.clone())
        .backend(backend.clone())
        .start()
        .await
        .expect("the worker starts");
    log.did("ready");
    let (tell, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if tell.send(line).is_err() {
                return;
            }
        }
    });
    while let Some(command) = commands.recv().await {
        let changed = match command.as_str() {
            "pause" => backend.store().pause(PAUSED).await,
            "resume" => backend.store().resume(PAUSED).await,
            other => panic!("unknown command `{other}`"),
        };
        assert!(
            changed.expect("the store answers"),
            "{command} changed nothing"
        );
        log.did(&command);
    }
    emitter.shutdown().await.expect("the worker stops");
}

// ---------------------------------------------------------------------------------------------
// The parent.

#[test]
fn pausing_on_one_worker_process_stops_the_listener_on_every_worker_on_postgres() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.url();
    let rt = runtime();
    let store = rt
        .block_on(PostgresConfig::new(&url).schema(NAMESPACE).connect())
        .expect("the store connects");
    pause_and_resume(Kind::Postgres, &url, &rt, store);
}

#[test]
fn pausing_on_one_worker_process_stops_the_listener_on_every_worker_on_redis() {
    let Some(server) = Redis::start() else { return };
    let url = server.url();
    let rt = runtime();
    let store = rt
        .block_on(RedisConfig::new(&url).prefix(NAMESPACE).connect())
        .expect("the store connects");
    pause_and_resume(Kind::Redis, &url, &rt, store);
}

/// A line of the log.
#[derive(Debug)]
enum Line {
    Run {
        worker: String,
        listener: String,
        n: u64,
        at: u128,
    },
    Did {
        what: String,
        worker: String,
        at: u128,
    },
}

fn parse(line: &str) -> Option<Line> {
    let words: Vec<&str> = line.split(' ').collect();
    match words[..] {
        ["run", worker, listener, n, at] => Some(Line::Run {
            worker: worker.to_owned(),
            listener: listener.to_owned(),
            n: n.parse().ok()?,
            at: at.parse().ok()?,
        }),
        [what, worker, at] => Some(Line::Did {
            what: what.to_owned(),
            worker: worker.to_owned(),
            at: at.parse().ok()?,
        }),
        _ => None,
    }
}

/// The worker processes, the log they share and where their output goes.
struct Workers {
    dir: tempfile::TempDir,
    children: Vec<(&'static str, Child)>,
}

impl Workers {
    fn start(kind: Kind, url: &str) -> Workers {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("runs.log");
        std::fs::File::create(&log).expect("the log is created");
        let children = WORKERS
            .into_iter()
            .map(|id| {
                let env = [
                    (STORE, kind.name().as_ref()),
                    (URL, url.as_ref()),
                    (LOG, log.as_os_str()),
                    (WORKER, id.as_ref()),
                ];
                let child = children::command(CHILD, &env, &output(dir.path(), id))
                    .stdin(Stdio::piped())
                    .spawn()
                    .expect("the worker starts");
                (id, child)
            })
            .collect();
        Workers { dir, children }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("runs.log")
    }

    /// Polls the log until `done` says that what it holds is enough; returns its lines then.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[Line]) -> bool) -> Vec<Line> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let lines = RunLog::read(&self.log(), parse);
            if done(&lines) {
                return lines;
            }
            for (id, child) in &mut self.children {
                if let Some(status) = child.try_wait().expect("the worker can be polled") {
                    panic!(
                        "worker {id} exited ({status}):\n{}",
                        children::read_output(&output(self.dir.path(), id))
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "not within {PATIENCE:?}: {what}; the log:\n{lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `listener` has run every one of `ns`.
    fn wait_for_runs(&mut self, listener: &str, ns: std::ops::Range<u64>) -> Vec<Line> {
        let what = format!("{listener} runs {ns:?}");
        self.wait_until(&what, |lines| {
            let mut missing: BTreeSet<u64> = ns.clone().collect();
            for line in lines {
                if let Line::Run {
                    listener: ran, n, ..
                } = line
                {
                    if ran == listener {
                        missing.remove(n);
                    }
                }
            }
            missing.is_empty()
        })
    }

    /// Tells `worker` to do `command`; waits until it did; returns when it did.
    fn tell(&mut self, worker: &str, command: &str) -> u128 {
        let (_, child) = self
            .children
            .iter_mut()
            .find(|(id, _)| *id == worker)
            .expect("a worker of ours");
        let stdin = child.stdin.as_mut().expect("the worker's stdin");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .expect("the worker reads its commands");
        let lines = self.wait_until(&format!("{worker} does {command}"), |lines| {
            lines.iter().any(|line| matches!(line, Line::Did { what, worker: by, .. } if what == command && by == worker))
        });
        lines
            .iter()
            .find_map(|line| match line {
                Line::Did {
                    what,
                    worker: by,
                    at,
                } if what == command && by == worker => Some(*at),
                _ => None,
            })
            .expect("the command is logged")
    }

    /// Closes the workers' stdin, which shuts them down, and checks that they exited well.
    fn stop(mut self) {
        for (_, child) in &mut self.children {
            drop(child.stdin.take());
        }
        for (id, child) in &mut self.children {
            let output = output(self.dir.path(), id);
            let status = children::wait(child, PATIENCE, "stop", &output);
            assert!(
                status.success(),
                "worker {id} failed ({status}):\n{}",
                children::read_output(&output)
            );
        }
    }
}

fn output(dir: &Path, worker: &str) -> PathBuf {
    dir.join(format!("{worker}.out"))
}

/// Runs the workers on the store at `url`; `store` is the producer's and the operator's: a
/// process of its own to the workers, as `emitter status` would be.
fn pause_and_resume<S: Admin>(kind: Kind, url: &str, rt: &tokio::runtime::Runtime, store: S) {
    let mut workers = Workers::start(kind, url);
    workers.wait_until("both workers start", |lines| {
        let ready = lines
            .iter()
            .filter(|line| matches!(line, Line::Did { what, .. } if what == "ready"))
            .count();
        ready == WORKERS.len()
    });
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let producer = rt
        .block_on(
            Emitter::builder()
                .listeners(listeners![paused, steady])
                // Start checks that every listener's state is provided, even where none runs.
                .state(Log {
                    runs: RunLog::open(&workers.log()),
                    worker: "producer".to_owned(),
                })
                .backend(backend.clone())
                .start(),
        )
        .expect("the producer starts");
    let emit = |ns: std::ops::Range<u64>| {
        rt.block_on(async {
            for n in ns {
                producer.emit_async(Tick { n }).await.expect("stored");
            }
        });
    };

    emit(0..BATCH);
    workers.wait_for_runs(PAUSED, 0..BATCH);
    let before = workers.wait_for_runs(STEADY, 0..BATCH).len();

    let paused_at = workers.tell("one", "pause");
    emit(BATCH..2 * BATCH);
    workers.wait_for_runs(STEADY, BATCH..2 * BATCH);
    // Past the grace period, the workers still claim (the steady listener's deliveries) and
    // still hand out nothing of the paused listener. Nothing tells that nothing happened:
    // waiting out the grace period is the test.
    let grace_end = paused_at + GRACE.as_micros();
    let left = grace_end.saturating_sub(now());
    std::thread::sleep(Duration::from_micros(
        u64::try_from(left).unwrap_or(u64::MAX),
    ));
    emit(2 * BATCH..3 * BATCH);
    let lines = workers.wait_for_runs(STEADY, 2 * BATCH..3 * BATCH);

    let late: Vec<&Line> = lines[before..]
        .iter()
        .filter(|line| {
            matches!(line, Line::Run { listener, n, at, .. }
                if listener == PAUSED && (*n >= BATCH || *at > grace_end))
        })
        .collect();
    assert!(
        late.is_empty(),
        "the paused listener ran on a worker process after the pause: {late:?}"
    );
    let counts = rt
        .block_on(backend.store().listener_counts())
        .expect("the counts are read");
    let waiting = counts
        .iter()
        .find(|counts| counts.listener == PAUSED)
        .map(|counts| counts.waiting);
    assert_eq!(
        waiting,
        Some(2 * BATCH),
        "the paused listener's emits are stored, waiting: {counts:?}"
    );

    workers.tell("two", "resume");
    let lines = workers.wait_for_runs(PAUSED, BATCH..3 * BATCH);
    let ran_on: BTreeSet<&str> = lines
        .iter()
        .filter_map(|line| match line {
            Line::Run { worker, .. } => Some(worker.as_str()),
            Line::Did { .. } => None,
        })
        .collect();
    println!(
        "pause_across_workers on {}: runs by worker process {ran_on:?}, {} lines",
        kind.name(),
        lines.len()
    );

    rt.block_on(producer.shutdown())
        .expect("the producer stops");
    workers.stop();
}
