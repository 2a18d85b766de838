//! For tests whose workers are the test binary run again as child processes (a test that does
//! nothing unless its environment says otherwise), so that they can crash, be killed and be
//! restarted: starting and awaiting them, and the log their listeners write each run to.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A worker child's life once its emitter started: writes the marker file `ready` (which the
/// parent waits for), runs until the parent closes the child's standard input, and shuts the
/// emitter down (draining), so that a parent can stop a worker cleanly as well as kill it.
pub async fn serve_until_stdin_closes(emitter: emitter::Emitter, ready: &Path) {
    File::create(ready).expect("the marker is written");
    let (closed, stdin_closed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        let _ = closed.send(());
    });
    let _ = stdin_closed.await;
    emitter.shutdown().await.expect("shutdown");
}

/// The signal `kill -9` and `Child::kill` send.
pub const SIGKILL: i32 = 9;
/// The signal `std::process::abort` raises.
pub const SIGABRT: i32 = 6;

/// A multi-thread runtime with two workers, as the tests and their children run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// An append-only log of listener runs that several processes share, each run one line.
///
/// A line is one `write` on a file opened with `O_APPEND`: lines of several processes never mix,
/// and a process killed or aborted after the write returned leaves its line whole (the kernel
/// keeps it; `fsync` would matter only for a power loss). Listeners log before they return, so the
/// log holds every run, whatever became of the process or the acknowledgement.
#[derive(Clone)]
pub struct RunLog(Arc<Mutex<File>>);

impl RunLog {
    /// Opens the log at `path`, creating it if missing.
    pub fn open(path: &Path) -> RunLog {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the log opens");
        RunLog(Arc::new(Mutex::new(file)))
    }

    /// Appends `line` and a newline.
    pub fn append(&self, line: &str) {
        let mut file = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(format!("{line}\n").as_bytes())
            .expect("the log is writable");
        file.flush().expect("the log is writable");
    }

    /// The lines of the log at `path`, each read by `parse`; panics on a line it cannot read.
    pub fn read<T>(path: &Path, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
        let text = std::fs::read_to_string(path).expect("the log is readable");
        text.lines()
            .map(|line| parse(line).unwrap_or_else(|| panic!("a malformed log line: {line:?}")))
            .collect()
    }

    /// The runs of a log of `n attempt` lines: the attempts of each `n`, in the order they ran.
    pub fn attempts(path: &Path) -> BTreeMap<u64, Vec<u32>> {
        let mut runs: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        let lines = Self::read(path, |line| {
            let (n, attempt) = line.split_once(' ')?;
            Some((n.parse().ok()?, attempt.parse().ok()?))
        });
        for (n, attempt) in lines {
            runs.entry(n).or_default().push(attempt);
        }
        runs
    }

    /// How many lines the log at `path` holds (0 while it does not exist).
    pub fn count(path: &Path) -> usize {
        std::fs::read(path)
            .map(|bytes| bytes.iter().filter(|&&byte| byte == b'\n').count())
            .unwrap_or(0)
    }
}

/// This test binary, to run only the test `test` (single-threaded, output not captured), with
/// `env`, its stdout and stderr written to `output`, and no core file should it abort. Spawn it
/// after setting anything else (stdin, say).
pub fn command(test: &str, env: &[(&str, &OsStr)], output: &Path) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = File::create(output).expect("the child's output file");
    let err = out.try_clone().expect("the child's output file");
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -c 0; exec \"$0\" \"$@\""])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .envs(env.iter().copied())
        .stdout(out)
        .stderr(err);
    command
}

/// Worker processes: this test binary run again as children that each run the test `test` (a
/// worker that serves until its stdin closes, see [`serve_until_stdin_closes`]), with their
/// output in `{dir}/{id}.out` and their ready marker at `{dir}/{id}.ready`. Dropped, it kills
/// those still running.
pub struct Workers {
    test: &'static str,
    dir: PathBuf,
    /// How long a worker may take to get ready or to stop: a liveness bound.
    patience: Duration,
    children: Vec<(String, Child)>,
}

impl Workers {
    /// No workers yet.
    pub fn new(test: &'static str, dir: &Path, patience: Duration) -> Workers {
        Workers {
            test,
            dir: dir.to_path_buf(),
            patience,
            children: Vec::new(),
        }
    }

    /// Starts worker `id` with `env` (and a stdin to close), without waiting for it.
    pub fn start(&mut self, id: &str, env: &[(&str, &OsStr)]) {
        let child = command(self.test, env, &self.dir.join(format!("{id}.out")))
            .stdin(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        self.children.push((id.to_owned(), child));
    }

    /// Waits until every worker wrote its ready marker; panics, with its output, if one exits
    /// before or is not ready in time.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + self.patience;
        for (id, child) in &mut self.children {
            while !self.dir.join(format!("{id}.ready")).exists() {
                let output = || read_output(&self.dir.join(format!("{id}.out")));
                if let Some(status) = child.try_wait().expect("the worker can be polled") {
                    panic!("{id} exited before it was ready ({status}):\n{}", output());
                }
                assert!(
                    Instant::now() < deadline,
                    "{id} was not ready within {:?}:\n{}",
                    self.patience,
                    output()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// What worker `id` printed.
    pub fn output(&self, id: &str) -> String {
        read_output(&self.dir.join(format!("{id}.out")))
    }

    /// The id of the running worker at `index`, in the order they were started.
    pub fn id(&self, index: usize) -> String {
        self.children[index].0.clone()
    }

    /// The process id of worker `id`.
    pub fn pid(&self, id: &str) -> u32 {
        self.children[self.position(id)].1.id()
    }

    fn position(&self, id: &str) -> usize {
        self.children
            .iter()
            .position(|(worker, _)| worker == id)
            .expect("a worker of ours")
    }

    /// Panics, with its output, if a worker exited.
    pub fn assert_running(&mut self) {
        for (id, child) in &mut self.children {
            if let Some(status) = child.try_wait().expect("the worker can be polled") {
                panic!(
                    "{id} exited ({status}) before it was killed or stopped:\n{}",
                    read_output(&self.dir.join(format!("{id}.out")))
                );
            }
        }
    }

    /// Kills worker `id` with SIGKILL: no destructor, no flush, no rollback, no shutdown runs.
    pub fn kill(&mut self, id: &str) {
        let (_, mut child) = self.children.remove(self.position(id));
        child.kill().expect("the worker is killed");
        let status = child.wait().expect("the killed worker is reaped");
        assert_eq!(
            signal(status),
            Some(SIGKILL),
            "the worker ended otherwise than by SIGKILL: {status}"
        );
    }

    /// Closes the workers' stdin, which shuts them down, and waits until they exited well;
    /// returns how long that took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        for (_, child) in &mut self.children {
            drop(child.stdin.take());
        }
        let deadline = started + self.patience;
        for (id, child) in &mut self.children {
            let output = || read_output(&self.dir.join(format!("{id}.out")));
            let status = loop {
                if let Some(status) = child.try_wait().expect("the worker can be polled") {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "{id} did not stop within {:?}:\n{}",
                    self.patience,
                    output()
                );
                std::thread::sleep(Duration::from_millis(10));
            };
            assert!(status.success(), "{id} failed ({status}):\n{}", output());
        }
        self.children.clear();
        started.elapsed()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` to exit; after `patience`, kills it and panics, saying that it did not
/// `what`, with its `output`.
pub fn wait(child: &mut Child, patience: Duration, what: &str, output: &Path) -> ExitStatus {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be polled") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "a child process did not {what} within {patience:?}:\n{}",
                read_output(output)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The signal that ended a process, if one did.
pub fn signal(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// What a child wrote to its output file, or nothing if it has none.
pub fn read_output(output: &Path) -> String {
    std::fs::read_to_string(output).unwrap_or_default()
}

/// The store a child process opens, as its environment names it ([`Kind::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The SQLite store, at a file's path.
    #[cfg(feature = "sqlite")]
    Sqlite,
    /// The PostgreSQL store, at a server's URL.
    #[cfg(feature = "postgres")]
    Postgres,
    /// The Redis store, at a server's URL.
    #[cfg(feature = "redis")]
    Redis,
}

impl Kind {
    /// The name a child's environment gives it.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Kind::Sqlite => "sqlite",
            #[cfg(feature = "postgres")]
            Kind::Postgres => "postgres",
            #[cfg(feature = "redis")]
            Kind::Redis => "redis",
        }
    }

    /// The store `name` names; panics on a name it does not know.
    pub fn parse(name: &str) -> Kind {
        match name {
            #[cfg(feature = "sqlite")]
            "sqlite" => Kind::Sqlite,
            #[cfg(feature = "postgres")]
            "postgres" => Kind::Postgres,
            #[cfg(feature = "redis")]
            "redis" => Kind::Redis,
            other => panic!("unknown store `{other}`"),
        }
    }
}

/// A PostgreSQL store at `url`, its tables in schema `namespace`.
#[cfg(feature = "postgres")]
pub async fn postgres_store(
    url: &str,
    namespace: &str,
) -> emitter::durable::postgres::PostgresStore {
    emitter::durable::postgres::PostgresConfig::new(url)
        .schema(namespace)
        .connect()
        .await
        .expect("the store connects")
}

/// A Redis store at `url`, its keys under the prefix `namespace`.
#[cfg(feature = "redis")]
pub async fn redis_store(url: &str, namespace: &str) -> emitter::durable::redis::RedisStore {
    emitter::durable::redis::RedisConfig::new(url)
        .prefix(namespace)
        .connect()
        .await
        .expect("the store connects")
}

/// Runs `$work` (which may `.await`) with `$store` bound to a store of `$kind` (a [`Kind`]) at
/// `$location` (a file for SQLite, a server's URL otherwise), its tables or keys under
/// `$namespace` (PostgreSQL's schema, Redis's key prefix).
#[macro_export]
macro_rules! with_store {
    ($kind:expr, $location:expr, $namespace:expr, |$store:ident| $work:expr) => {
        match $kind {
            #[cfg(feature = "sqlite")]
            $crate::children::Kind::Sqlite => {
                let $store = ::emitter::durable::sqlite::SqliteStore::open($location)
                    .expect("the database opens");
                $work
            }
            #[cfg(feature = "postgres")]
            $crate::children::Kind::Postgres => {
                let $store = $crate::children::postgres_store($location, $namespace).await;
                $work
            }
            #[cfg(feature = "redis")]
            $crate::children::Kind::Redis => {
                let $store = $crate::children::redis_store($location, $namespace).await;
                $work
            }
        }
    };
}
