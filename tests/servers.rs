//! Private Redis and PostgreSQL servers for the backends' tests: each test starts its own on a free
//! port of 127.0.0.1, with its data in a temporary directory, and the server dies with it.
//!
//! Where a server's programs are missing, `start` notes it on stderr and returns `None`, so the test
//! skips itself; with `EMITTER_REQUIRE_SERVERS=1` (set by `scripts/test.sh`, which installs the
//! servers) it panics instead:
//!
//! ```no_run
//! use emitter_tests::servers::Redis;
//!
//! let Some(redis) = Redis::start() else { return };
//! assert_eq!(redis.command(&["PING"]), "+PONG\r\n");
//! ```

use std::env;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to answer once launched (a loaded CI machine is slow).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often to ask a launching server whether it is ready.
const POLL: Duration = Duration::from_millis(20);
/// How long a server may take to answer a command.
const ANSWER: Duration = Duration::from_secs(5);
/// How long a launching server may take to answer before we look again whether it exited: what
/// answers may be another process that took the port, and ours may be dying of that.
const POLL_ANSWER: Duration = Duration::from_millis(500);
/// How many free ports to try: another process may bind ours between finding it and launching.
const PORT_ATTEMPTS: usize = 5;
/// What both servers log when their port is taken.
const PORT_TAKEN: &str = "Address already in use";

/// Options of [`Redis::start_with`]; the default is what [`Redis::start`] uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisOptions {
    /// Log every write to an append-only file, flushed before the reply
    /// (`--appendonly yes --appendfsync always`), so acknowledged writes survive
    /// [`Redis::restart`]. Default `false`: nothing persists (`--save '' --appendonly no`).
    pub append_only: bool,
}

/// A private `redis-server` (from PATH) on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct Redis {
    program: PathBuf,
    options: RedisOptions,
    port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Redis {
    /// Starts a server that keeps nothing on disk; `None` if `redis-server` is missing (see the
    /// module docs). Panics, with the server's log, if it does not start.
    pub fn start() -> Option<Redis> {
        Self::start_with(RedisOptions::default())
    }

    /// Starts a server with `options`; otherwise as [`Redis::start`].
    pub fn start_with(options: RedisOptions) -> Option<Redis> {
        let Some(program) = find_on_path("redis-server") else {
            return missing("redis-server not found on PATH");
        };
        let mut redis = Redis {
            program,
            options,
            port: 0,
            child: None,
            dir: temp_dir("redis"),
        };
        on_free_port("redis-server", |port| {
            redis.port = port;
            redis.launch()
        });
        Some(redis)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs (benchmarks read its CPU time from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL, as a crash would), if it runs.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }

    /// Kills the server if it runs, then starts it again on the same port and directory.
    /// Panics, with the server's log, if it does not start.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.launch() {
            panic!("redis-server did not restart on port {}: {log}", self.port);
        }
    }

    /// Sends one command on a new connection and returns the reply as Redis wrote it: simple
    /// strings, errors, integers and bulk strings whole (`+PONG\r\n`, `$5\r\nhello\r\n`), arrays
    /// only their first line. For quick checks; tests of the backend use a real client.
    pub fn command(&self, args: &[&str]) -> String {
        resp(self.port, args, ANSWER).unwrap_or_else(|error| {
            panic!(
                "redis-server on port {} did not answer {args:?}: {error}",
                self.port
            )
        })
    }

    fn launch(&mut self) -> Result<(), String> {
        let mut command = command_as(&self.program, None);
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--daemonize", "no"]);
        if self.options.append_only {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let log = self.dir.path().join("redis.log");
        let port = self.port;
        // Answering PING (not `-LOADING`), and as our process: not one that took the port first.
        let ready = |pid: u32| {
            resp(port, &["PING"], POLL_ANSWER).is_ok_and(|reply| reply.starts_with("+PONG"))
                && resp(port, &["INFO", "server"], POLL_ANSWER)
                    .is_ok_and(|info| info.contains(&format!("\r\nprocess_id:{pid}\r\n")))
        };
        self.child = Some(start_server(command, &log, ready)?);
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private server that can be stopped and started again, whichever it is.
pub trait Restartable {
    /// Stops the server, if it runs.
    fn stop(&mut self);
    /// Stops the server if it runs, then starts it again on the same port.
    fn restart(&mut self);
}

impl Restartable for Redis {
    fn stop(&mut self) {
        Redis::stop(self);
    }

    fn restart(&mut self) {
        Redis::restart(self);
    }
}

impl Restartable for Postgres {
    fn stop(&mut self) {
        Postgres::stop(self);
    }

    fn restart(&mut self) {
        Postgres::restart(self);
    }
}

/// Options of [`Postgres::start_with`]; the default is what [`Postgres::start`] uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Flush commits to disk (`-c fsync=on`). Default `false`: faster, and committed rows still
    /// survive [`Postgres::restart`]; only a crash of the machine would lose them.
    pub fsync: bool,
}

/// A private PostgreSQL server on 127.0.0.1, with database `postgres` and superuser `emitter`
/// (no password), stopped on drop.
///
/// Its programs come from `$EMITTER_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`
/// (where Debian keeps them), else PATH. PostgreSQL refuses to run as root, so as root it runs
/// as the `postgres` user the Debian package creates.
#[derive(Debug)]
pub struct Postgres {
    tools: PgTools,
    options: PostgresOptions,
    run_as: Option<&'static str>,
    port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Postgres {
    /// Creates a cluster in a temporary directory and starts a server on it; `None` if
    /// PostgreSQL's programs are missing (see the module docs). Panics, with the server's log,
    /// if it does not start.
    pub fn start() -> Option<Postgres> {
        Self::start_with(PostgresOptions::default())
    }

    /// Starts a server with `options`; otherwise as [`Postgres::start`].
    pub fn start_with(options: PostgresOptions) -> Option<Postgres> {
        let tools = match PgTools::find() {
            Ok(tools) => tools,
            Err(not_found) => return missing(&not_found),
        };
        let run_as = is_root().then_some("postgres");
        if run_as.is_some() && !succeeds(Command::new("id").arg("postgres")) {
            return missing("running as root, PostgreSQL needs a `postgres` user to run as");
        }
        let dir = temp_dir("postgres");
        if run_as.is_some() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(dir.path());
            run(&mut chown);
        }
        let mut initdb = command_as(&tools.initdb, run_as);
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "emitter", "--no-sync", "-E", "UTF8"])
            // Messages in English, whatever the machine's locale: `on_free_port` reads them.
            .arg("--locale=C")
            .current_dir(dir.path());
        run(&mut initdb);
        let mut postgres = Postgres {
            tools,
            options,
            run_as,
            port: 0,
            child: None,
            dir,
        };
        on_free_port("postgres", |port| {
            postgres.port = port;
            postgres.launch()
        });
        Some(postgres)
    }

    /// `postgres://emitter@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://emitter@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs (benchmarks read its CPU time from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server, if it runs: a fast shutdown (`pg_ctl stop -m fast`), which rolls back
    /// open transactions and keeps committed ones; a kill if that fails.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut pg_ctl = command_as(&self.tools.pg_ctl, self.run_as);
        pg_ctl
            .arg("stop")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "-t", "30"])
            .current_dir(self.dir.path());
        if !succeeds(&mut pg_ctl) {
            kill(&mut child);
        }
        // Reaps the process; an error means it was already reaped.
        let _ = child.wait();
    }

    /// Stops the server if it runs, then starts it again on the same port and data directory.
    /// Panics, with the server's log, if it does not start.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.launch() {
            panic!("postgres did not restart on port {}: {log}", self.port);
        }
    }

    /// Runs `sql` with `psql` and returns what it printed: unaligned rows, no headers (`select 1`
    /// gives `1`). Panics, with psql's errors, if a statement fails. For quick checks; tests of
    /// the backend use a real client.
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new(&self.tools.psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .args(["-c", sql])
            .output()
            .expect("could not run psql");
        assert!(
            output.status.success(),
            "psql failed on {sql:?} ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim_end_matches('\n')
            .to_owned()
    }

    fn launch(&mut self) -> Result<(), String> {
        let fsync = if self.options.fsync { "on" } else { "off" };
        let mut command = command_as(&self.tools.postgres, self.run_as);
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-c", &format!("fsync={fsync}")])
            .current_dir(self.dir.path());
        let log = self.dir.path().join("postgres.log");
        // What `pg_ctl start -w` waits for: the server's lock file names our process (not one
        // left by an earlier run) and says it accepts connections.
        let lock_file = self.dir.path().join("data").join("postmaster.pid");
        let ready = |pid: u32| {
            fs::read_to_string(&lock_file).is_ok_and(|lock| {
                let lines: Vec<&str> = lock.lines().collect();
                lines.first() == Some(&pid.to_string().as_str())
                    && lines.get(7).is_some_and(|status| status.trim() == "ready")
            })
        };
        self.child = Some(start_server(command, &log, ready)?);
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PostgreSQL programs the servers need, all from one installation.
#[derive(Debug)]
struct PgTools {
    initdb: PathBuf,
    postgres: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
}

impl PgTools {
    /// Looks in `$EMITTER_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`, else PATH;
    /// an error names the program missing and where it was looked for.
    fn find() -> Result<PgTools, String> {
        let bin = env::var_os("EMITTER_PG_BIN")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(newest_debian_pg_bin);
        let tool = |name: &str| {
            let found = match &bin {
                Some(bin) => Some(bin.join(name)).filter(|path| path.is_file()),
                None => find_on_path(name),
            };
            found.ok_or_else(|| match &bin {
                Some(bin) => format!("PostgreSQL's `{name}` not found in {}", bin.display()),
                None => format!(
                    "PostgreSQL's `{name}` not found in /usr/lib/postgresql/*/bin or on PATH"
                ),
            })
        };
        Ok(PgTools {
            initdb: tool("initdb")?,
            postgres: tool("postgres")?,
            pg_ctl: tool("pg_ctl")?,
            psql: tool("psql")?,
        })
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with a server, comparing versions as numbers (`9.6` < `15`).
fn newest_debian_pg_bin() -> Option<PathBuf> {
    let version = |path: &Path| -> Vec<u32> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        name.split('.')
            .map(|part| part.parse().unwrap_or(0))
            .collect()
    };
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        // A newer client alone has a bin directory too.
        .filter(|bin| bin.join("postgres").is_file())
        .max_by_key(|bin| bin.parent().map(version))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Skips the calling test, or fails it under `EMITTER_REQUIRE_SERVERS=1`.
fn missing<T>(what: &str) -> Option<T> {
    let how = "run `bash scripts/test.sh` (it installs the servers) to run this test";
    if env::var_os("EMITTER_REQUIRE_SERVERS").is_some_and(|require| require == "1") {
        panic!("{what}, and EMITTER_REQUIRE_SERVERS=1 forbids skipping; {how}");
    }
    // Straight to stderr: libtest captures `eprintln!`, and shows it only for failed tests.
    let _ = writeln!(io::stderr(), "\n*** SKIPPED: {what}; {how} ***\n");
    None
}

/// Starts a server on a free port with `launch`, trying another port if someone took this one.
fn on_free_port(server: &str, mut launch: impl FnMut(u16) -> Result<(), String>) {
    let mut attempt = 1;
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("could not find a free port on 127.0.0.1")
            .port();
        match launch(port) {
            Ok(()) => return,
            Err(log) if attempt < PORT_ATTEMPTS && log.contains(PORT_TAKEN) => attempt += 1,
            Err(log) => panic!("{server} did not start on port {port}: {log}"),
        }
    }
}

/// Spawns a server with its output appended to `log` and waits until `ready` (given its process
/// id); if it exits or stays unready, kills it and returns what happened with the end of its log.
fn start_server(
    command: Command,
    log: &Path,
    mut ready: impl FnMut(u32) -> bool,
) -> Result<Child, String> {
    let mut child = spawn_server(command, log);
    let deadline = Instant::now() + READY_TIMEOUT;
    let problem = loop {
        match child.try_wait() {
            Ok(Some(status)) => break format!("it exited ({status})"),
            Ok(None) if ready(child.id()) => return Ok(child),
            Ok(None) if Instant::now() > deadline => {
                break format!("it did not answer within {READY_TIMEOUT:?}")
            }
            Ok(None) => thread::sleep(POLL),
            Err(error) => break format!("it could not be waited for: {error}"),
        }
    };
    kill(&mut child);
    let text = fs::read_to_string(log).unwrap_or_else(|error| format!("(unreadable: {error})"));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    Err(format!(
        "{problem}; the end of its log ({}):\n{tail}",
        log.display()
    ))
}

/// Spawns a long-running server from one thread that lives as long as the process. With
/// `setpriv --pdeathsig` (see [`command_as`]) the kernel kills the server when the thread that
/// spawned it ends: spawned from a test's own thread, a server shared beyond that test would die
/// with it; spawned from here, only the end of the test process (even a crash, where no `Drop`
/// runs) kills it.
fn spawn_server(mut command: Command, log: &Path) -> Child {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("test-server-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    // The requester waits for the reply, so it cannot be gone.
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("could not start the thread that spawns test servers");
        requests
    });
    let output = File::options()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|error| panic!("could not open {}: {error}", log.display()));
    let errors = output
        .try_clone()
        .expect("could not duplicate the log file's handle");
    command.stdin(Stdio::null()).stdout(output).stderr(errors);
    let description = format!("{command:?}");
    let (reply, child) = mpsc::channel();
    spawner
        .send((command, reply))
        .expect("the spawner thread lives as long as the process");
    child
        .recv()
        .expect("the spawner thread answers every request")
        .unwrap_or_else(|error| panic!("could not run {description}: {error}"))
}

/// A command running `program` as `user` (`None`: as ourselves), through `setpriv` where it is
/// needed for that or available to have the server killed when the test process dies.
fn command_as(program: &Path, user: Option<&str>) -> Command {
    static PDEATHSIG: OnceLock<bool> = OnceLock::new();
    let pdeathsig = *PDEATHSIG
        .get_or_init(|| succeeds(Command::new("setpriv").args(["--pdeathsig", "KILL", "true"])));
    let mut setpriv = Vec::new();
    if let Some(user) = user {
        setpriv.extend([
            format!("--reuid={user}"),
            format!("--regid={user}"),
            "--init-groups".to_owned(),
        ]);
    }
    if pdeathsig {
        setpriv.extend(["--pdeathsig".to_owned(), "KILL".to_owned()]);
    }
    if setpriv.is_empty() {
        return Command::new(program);
    }
    let mut command = Command::new("setpriv");
    command.args(setpriv).arg("--").arg(program);
    command
}

fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        let output = Command::new("id")
            .arg("-u")
            .output()
            .expect("could not run `id -u` to learn whether we are root");
        output.stdout.trim_ascii() == b"0"
    })
}

fn temp_dir(server: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("emitter-{server}-"))
        .tempdir()
        .expect("could not create a temporary directory for a test server")
}

/// Runs a setup step to its end; panics with its output if it fails.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("could not run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn kill(child: &mut Child) {
    // An error means the process already exited, which is all we want.
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends one command in RESP and reads one reply (see [`Redis::command`]).
fn resp(port: u16, args: &[&str], timeout: Duration) -> io::Result<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(timeout))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    if let Some(len) = reply
        .strip_prefix('$')
        .and_then(|len| len.trim_end().parse::<usize>().ok())
    {
        let mut bulk = vec![0; len + 2];
        reader.read_exact(&mut bulk)?;
        reply.push_str(&String::from_utf8_lossy(&bulk));
    }
    Ok(reply)
}
