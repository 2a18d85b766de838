//! Distributed delivery: several worker processes share one Redis (or PostgreSQL) store, and each
//! delivery runs in exactly one of them.
//!
//! The program plays two roles. Run normally, it is the **parent**: it starts `--workers`
//! worker processes (itself again, with the argument `worker`), waits until each is ready, then
//! emits `--events` `OrderPlaced` events from an emit-only emitter
//! (`DurableConfig::default().deliver(false)`, as a web server whose workers run elsewhere
//! would), and waits until the store holds nothing unfinished. Each **worker** is an emitter
//! with a `Durable` backend over the same store and two listeners of `OrderPlaced`,
//! `billing.charge` and `mail.receipt`; it prints every delivery it runs, prefixed with its id,
//! and appends it to a log file shared by all workers. The parent then counts the log: how the
//! deliveries spread across the workers, and that every order was charged once and got one
//! receipt. It exits with an error if any delivery is missing or ran twice.
//!
//! ```sh
//! # Redis: with no URL, the example starts a private `redis-server` (from PATH, as the Debian
//! # package `redis-server` installs it) on a free port of 127.0.0.1, and stops it at the end.
//! cargo run --example distributed --features redis
//! cargo run --example distributed --features redis -- --redis redis://127.0.0.1:6379/
//! # PostgreSQL (the example's PostgreSQL support comes with the `postgres` feature):
//! cargo run --example distributed --features redis,postgres -- --postgres postgres://app@localhost/app
//! # Options: --events N (default 200), --workers N (default 3).
//! ```
//!
//! Each run keeps its deliveries under a key prefix (Redis) or schema (PostgreSQL) of its own,
//! `distributed_<time>_<pid>`, so runs against a shared server never see each other's events.
//! The run leaves it behind, empty.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::redis::RedisConfig;
use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event, EventMeta, State};
use tokio::sync::mpsc;

/// A customer placed an order.
#[derive(Event, Debug, Clone)]
pub struct OrderPlaced {
    pub order: u64,
    pub email: String,
}

/// The listeners, by name: each `OrderPlaced` is one delivery to each.
pub const LISTENERS: [&str; 2] = ["billing.charge", "mail.receipt"];

/// How long a listener works: long enough that one worker cannot keep up alone.
const WORK: Duration = Duration::from_millis(10);

/// The most deliveries a worker runs at once (the engine's default is 64): a small number makes
/// the work spread across the workers even for a few hundred events.
const IN_FLIGHT: usize = 8;

/// How long the parent waits for workers to start, deliver and stop: a liveness bound.
const PATIENCE: Duration = Duration::from_secs(120);

/// What a worker prints once its emitter runs: the end of a line (a test harness running the
/// worker may have printed the start of it).
const READY: &str = "worker ready";

#[listener(events = [OrderPlaced], name = "billing.charge")]
async fn charge(order: u64, meta: EventMeta, State(worker): State<Worker>) {
    tokio::time::sleep(WORK).await; // the card is charged
    worker.handled(order, &meta);
}

#[listener(events = [OrderPlaced], name = "mail.receipt")]
async fn send_receipt(order: u64, email: &str, meta: EventMeta, State(worker): State<Worker>) {
    tokio::time::sleep(WORK).await; // the mail is sent
    let _ = email;
    worker.handled(order, &meta);
}

/// A worker's identity and the log file all workers append to.
#[derive(Clone)]
struct Worker {
    id: String,
    log: Arc<Mutex<File>>,
}

impl Worker {
    fn open(id: &str, log: &Path) -> std::io::Result<Worker> {
        let file = OpenOptions::new().create(true).append(true).open(log)?;
        Ok(Worker {
            id: id.to_owned(),
            log: Arc::new(Mutex::new(file)),
        })
    }

    /// Records a delivery: one `write` of a whole line on a file opened for appending, so lines
    /// of several processes never mix.
    fn handled(&self, order: u64, meta: &EventMeta) {
        let (id, listener, attempt) = (&self.id, meta.listener(), meta.attempt());
        println!("[{id}] order #{order}: {listener} (attempt {attempt})");
        let line = format!("{id} {order} {listener} {attempt}\n");
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = log.write_all(line.as_bytes()).and_then(|()| log.flush()) {
            // The parent finds the delivery missing and says so.
            eprintln!("[{id}] could not log order #{order} {listener}: {error}");
        }
    }
}

/// Where the deliveries are kept.
#[derive(Debug, Clone)]
pub enum Server {
    /// A Redis server's URL.
    Redis(String),
    /// A PostgreSQL server's URL.
    #[cfg(feature = "postgres")]
    Postgres(String),
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The store's server.
    pub server: Server,
    /// How many events to emit.
    pub events: u64,
    /// How many worker processes to start.
    pub workers: usize,
    /// The log file the workers append their deliveries to (emptied first).
    pub log: PathBuf,
}

/// Makes the command that starts a worker process, given the worker's arguments (the ones
/// [`worker`] reads). `main` runs this program again with `worker` before them; a test runs its
/// own binary instead.
pub type Launch<'a> = &'a dyn Fn(&[String]) -> Command;

/// What the workers' log says.
#[derive(Debug, Default)]
pub struct Summary {
    /// Events emitted.
    pub events: u64,
    /// How many deliveries each worker ran, by listener.
    pub by_worker: BTreeMap<String, BTreeMap<String, u64>>,
    /// (order, listener) pairs nobody handled.
    pub missing: Vec<(u64, String)>,
    /// (order, listener, runs) pairs handled more than once.
    pub repeated: Vec<(u64, String, usize)>,
    /// Log lines that name no emitted order or no known listener.
    pub strays: Vec<String>,
}

impl Summary {
    /// Whether every (order, listener) pair ran exactly once, and nothing else ran.
    pub fn exactly_once(&self) -> bool {
        self.missing.is_empty() && self.repeated.is_empty() && self.strays.is_empty()
    }

    /// Deliveries run, all workers together.
    pub fn delivered(&self) -> u64 {
        self.by_worker.values().flat_map(BTreeMap::values).sum()
    }
}

/// The parent: starts the workers, emits, waits until every delivery is done, stops the workers
/// and counts their log.
pub async fn run(config: &Config, launch: Launch<'_>) -> Result<Summary, Box<dyn Error>> {
    File::create(&config.log)?;
    let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
    let namespace = format!(
        "distributed_{}_{}",
        since_epoch.as_secs(),
        std::process::id()
    );
    let store_args = match &config.server {
        Server::Redis(url) => ["--redis", url],
        #[cfg(feature = "postgres")]
        Server::Postgres(url) => ["--postgres", url],
    };
    println!(
        "starting {} workers on {} (namespace {namespace})",
        config.workers,
        store_args[0].trim_start_matches('-')
    );
    let mut workers = Workers::new();
    for number in 1..=config.workers {
        let id = format!("worker-{number}");
        let mut args = vec!["--id".to_owned(), id.clone()];
        args.extend(store_args.iter().map(|arg| (*arg).to_owned()));
        args.extend(["--namespace".to_owned(), namespace.clone()]);
        args.extend(["--log".to_owned(), config.log.display().to_string()]);
        workers.start(id, launch(&args))?;
    }
    workers.ready().await?;

    let started = Instant::now();
    println!(
        "emitting {} orders from an emit-only process",
        config.events
    );
    match &config.server {
        Server::Redis(url) => {
            let store = RedisConfig::new(url).prefix(&namespace).connect().await?;
            emit(store, config).await?;
        }
        #[cfg(feature = "postgres")]
        Server::Postgres(url) => {
            use emitter::durable::postgres::PostgresConfig;
            let store = PostgresConfig::new(url)
                .schema(&namespace)
                .connect()
                .await?;
            emit(store, config).await?;
        }
    }
    let elapsed = started.elapsed();
    workers.stop().await?;

    let summary = tally(&config.log, config.events)?;
    println!("\nevery delivery done in {elapsed:.2?}; deliveries by worker:");
    for (worker, listeners) in &summary.by_worker {
        let total: u64 = listeners.values().sum();
        let each: Vec<String> = listeners
            .iter()
            .map(|(listener, count)| format!("{listener} {count}"))
            .collect();
        println!("  {worker:<10} {total:>6}  ({})", each.join(", "));
    }
    println!(
        "  {:<10} {:>6}  for {} orders x {} listeners",
        "total",
        summary.delivered(),
        summary.events,
        LISTENERS.len()
    );
    for (order, listener) in summary.missing.iter().take(10) {
        println!("  MISSING: order #{order} {listener}");
    }
    for (order, listener, runs) in summary.repeated.iter().take(10) {
        println!("  REPEATED: order #{order} {listener} ran {runs} times");
    }
    for line in summary.strays.iter().take(10) {
        println!("  STRAY LOG LINE: {line:?}");
    }
    println!(
        "{} missing, {} repeated, {} stray: {}",
        summary.missing.len(),
        summary.repeated.len(),
        summary.strays.len(),
        if summary.exactly_once() {
            "each order was charged once and got one receipt"
        } else {
            "NOT exactly once"
        }
    );
    Ok(summary)
}

/// Stores the events from an emitter that runs no listener, then waits until the workers have
/// finished every delivery.
async fn emit<S: Store>(store: S, config: &Config) -> Result<(), Box<dyn Error>> {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let emitter = Emitter::builder()
        .listeners(listeners![charge, send_receipt])
        // Start checks that every listener's state is provided, even where none runs.
        .state(Worker::open("parent", &config.log)?)
        .backend(backend.clone())
        .start()
        .await?;
    // `emit_async` returns once the event is stored; all at once, so that they are stored in
    // batches.
    let mut emits = tokio::task::JoinSet::new();
    for order in 1..=config.events {
        let emitter = emitter.clone();
        let email = format!("customer{order}@example.com");
        emits.spawn(async move { emitter.emit_async(OrderPlaced { order, email }).await });
    }
    while let Some(emitted) = emits.join_next().await {
        emitted??;
    }
    tokio::time::timeout(PATIENCE, backend.wait_settled())
        .await
        .map_err(|_| format!("the workers did not finish within {PATIENCE:?}"))??;
    emitter.shutdown().await?;
    Ok(())
}

/// What a worker's relay thread says: `(worker, true)` when the worker is ready,
/// `(worker, false)` when its output ended.
type News = (String, bool);

/// The worker processes, with the threads that relay their output.
struct Workers {
    running: Vec<(String, Child)>,
    relays: Vec<JoinHandle<()>>,
    news: (mpsc::UnboundedSender<News>, mpsc::UnboundedReceiver<News>),
}

impl Workers {
    fn new() -> Workers {
        Workers {
            running: Vec::new(),
            relays: Vec::new(),
            news: mpsc::unbounded_channel(),
        }
    }

    fn start(&mut self, id: String, mut command: Command) -> Result<(), Box<dyn Error>> {
        let news = self.news.0.clone();
        // A worker runs until its stdin closes: when the parent stops it, or dies.
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("could not start {id}: {error}"))?;
        let stdout = child.stdout.take().ok_or("the worker's stdout is piped")?;
        let relay_id = id.clone();
        self.relays.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.ends_with(READY) {
                    let _ = news.send((relay_id.clone(), true));
                } else {
                    println!("{line}");
                }
            }
            let _ = news.send((relay_id, false));
        }));
        self.running.push((id, child));
        Ok(())
    }

    /// Waits until every worker said it is ready.
    async fn ready(&mut self) -> Result<(), Box<dyn Error>> {
        let news = &mut self.news.1;
        let mut waiting = self.running.len();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while waiting > 0 {
            match tokio::time::timeout_at(deadline, news.recv()).await {
                Ok(Some((_, true))) => waiting -= 1,
                Ok(Some((id, false))) => {
                    return Err(
                        format!("{id} exited before it was ready (see its errors above)").into(),
                    )
                }
                Ok(None) => return Err("the workers' output ended".into()),
                Err(_) => {
                    return Err(format!("the workers were not ready within {PATIENCE:?}").into())
                }
            }
        }
        println!("{} workers ready", self.running.len());
        Ok(())
    }

    /// Closes the workers' stdin, which stops them, and waits until they exited.
    async fn stop(&mut self) -> Result<(), Box<dyn Error>> {
        for (_, child) in &mut self.running {
            drop(child.stdin.take());
        }
        let deadline = Instant::now() + PATIENCE;
        for (id, child) in &mut self.running {
            let status = loop {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                if Instant::now() > deadline {
                    return Err(format!("{id} did not stop within {PATIENCE:?}").into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            check_exit(id, status)?;
        }
        self.running.clear();
        for relay in self.relays.drain(..) {
            let _ = relay.join();
        }
        Ok(())
    }
}

impl Drop for Workers {
    /// On an error, leaves no worker behind.
    fn drop(&mut self) {
        for (_, child) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn check_exit(id: &str, status: ExitStatus) -> Result<(), Box<dyn Error>> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("{id} failed ({status}); its errors are above").into())
    }
}

/// Reads the log: who ran what, and which (order, listener) pairs ran other than once.
fn tally(log: &Path, events: u64) -> Result<Summary, Box<dyn Error>> {
    let text = std::fs::read_to_string(log)?;
    let mut summary = Summary {
        events,
        ..Summary::default()
    };
    let mut runs: BTreeMap<(u64, &str), usize> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let known = match fields[..] {
            [worker, order, listener, _attempt] => order
                .parse::<u64>()
                .ok()
                .filter(|order| (1..=events).contains(order))
                .zip(LISTENERS.iter().find(|known| **known == listener))
                .map(|(order, listener)| (worker, order, *listener)),
            _ => None,
        };
        let Some((worker, order, listener)) = known else {
            summary.strays.push(line.to_owned());
            continue;
        };
        *runs.entry((order, listener)).or_default() += 1;
        *summary
            .by_worker
            .entry(worker.to_owned())
            .or_default()
            .entry(listener.to_owned())
            .or_default() += 1;
    }
    for order in 1..=events {
        for listener in LISTENERS {
            match runs.get(&(order, listener)).copied().unwrap_or(0) {
                0 => summary.missing.push((order, listener.to_owned())),
                1 => {}
                many => summary.repeated.push((order, listener.to_owned(), many)),
            }
        }
    }
    Ok(summary)
}

/// A worker process: runs the listeners on the store named in `args` until its stdin closes.
///
/// `args`: `--id ID (--redis URL | --postgres URL) --namespace NAME --log PATH`.
pub async fn worker(args: &[String]) -> Result<(), Box<dyn Error>> {
    let value = |flag: &str| -> Option<&str> {
        let at = args.iter().position(|arg| arg == flag)?;
        args.get(at + 1).map(String::as_str)
    };
    let missing = |flag: &str| format!("a worker needs `{flag}`: {args:?}");
    let id = value("--id").ok_or_else(|| missing("--id"))?;
    let namespace = value("--namespace").ok_or_else(|| missing("--namespace"))?;
    let log = value("--log").ok_or_else(|| missing("--log"))?;
    let worker = Worker::open(id, Path::new(log))?;
    if let Some(url) = value("--redis") {
        let store = RedisConfig::new(url).prefix(namespace).connect().await?;
        return serve(store, worker).await;
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = value("--postgres") {
        use emitter::durable::postgres::PostgresConfig;
        let store = PostgresConfig::new(url).schema(namespace).connect().await?;
        return serve(store, worker).await;
    }
    Err(missing("--redis URL` or `--postgres URL").into())
}

async fn serve<S: Store>(store: S, worker: Worker) -> Result<(), Box<dyn Error>> {
    let config = DurableConfig::default()
        .worker_id(&worker.id)
        .max_in_flight(IN_FLIGHT);
    let emitter = Emitter::builder()
        .listeners(listeners![charge, send_receipt])
        .state(worker)
        .backend(Durable::with_config(store, config))
        .start()
        .await?;
    println!("{READY}");
    let (closed, stdin_closed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    let _ = stdin_closed.await;
    // Running deliveries finish (within a lease); what is left waits in the store for others.
    emitter.shutdown().await?;
    Ok(())
}

/// A `redis-server` of our own on a free port of 127.0.0.1, keeping nothing on disk; killed when
/// dropped.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    async fn start() -> Result<PrivateRedis, Box<dyn Error>> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| {
                format!(
                    "no --redis or --postgres URL was given, and `redis-server` could not be \
                     started to serve as one ({error}): install it (Debian: `apt-get install \
                     redis-server`) or pass `-- --redis redis://HOST:PORT/`"
                )
            })?;
        let mut redis = PrivateRedis { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = redis.child.try_wait()? {
                return Err(format!("redis-server exited at start ({status})").into());
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return worker(&args[1..]).await;
    }
    let value = |flag: &str| -> Option<&String> {
        let at = args.iter().position(|arg| arg == flag)?;
        args.get(at + 1)
    };
    let number = |flag: &str, default: u64| -> Result<u64, String> {
        value(flag).map_or(Ok(default), |text| {
            text.parse()
                .map_err(|_| format!("`{flag}` takes a number, not {text:?}"))
        })
    };
    let mut private = None;
    let server = if let Some(url) = value("--redis") {
        Server::Redis(url.clone())
    } else if let Some(url) = value("--postgres") {
        #[cfg(feature = "postgres")]
        {
            Server::Postgres(url.clone())
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            return Err("`--postgres` needs the `postgres` feature: \
                        `cargo run --example distributed --features redis,postgres`"
                .into());
        }
    } else {
        let redis = PrivateRedis::start().await?;
        println!("started a private redis-server at {}", redis.url());
        let url = redis.url();
        private = Some(redis);
        Server::Redis(url)
    };
    let config = Config {
        server,
        events: number("--events", 200)?,
        workers: usize::try_from(number("--workers", 3)?)?.max(1),
        log: std::env::temp_dir().join(format!("emitter-distributed-{}.log", std::process::id())),
    };
    let program = std::env::current_exe()?;
    let launch = |args: &[String]| {
        let mut command = Command::new(&program);
        command.arg("worker").args(args);
        command
    };
    let summary = run(&config, &launch).await;
    drop(private);
    let _ = std::fs::remove_file(&config.log);
    if !summary?.exactly_once() {
        return Err("some deliveries did not run exactly once".into());
    }
    Ok(())
}
