//! Worker processes: started and read by the coordinator, and their own `main`.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listeners, Emitter};
use emitter_bench::profile::{Profile, Profiled, Stats};
use tokio::sync::Notify;

use crate::cli::{Backend, Side};
use crate::cpu::own_cpu;
use crate::postgres_baseline::pg_worker;
use crate::produce::{postgres_store, redis_store};
use crate::redis_baseline::redis_worker;
use crate::stats::Tally;
use crate::{count, MAX_IN_FLIGHT, URL_ENV, WORKER_LIMIT};

pub(crate) struct WorkerSpec<'a> {
    pub(crate) backend: Backend,
    pub(crate) side: Side,
    pub(crate) url: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) events: u64,
    pub(crate) profile: bool,
}

/// A worker process: told to stop by the end of its stdin, it answers on its stdout.
pub(crate) struct WorkerProcess {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl WorkerProcess {
    pub(crate) fn spawn(spec: &WorkerSpec<'_>) -> Result<WorkerProcess, String> {
        let program = std::env::current_exe()
            .map_err(|error| format!("cannot find this program to start workers: {error}"))?;
        let mut child = Command::new(program)
            .arg("worker")
            .arg(spec.backend.name())
            .arg(spec.side.name())
            .arg(spec.namespace)
            .arg(spec.events.to_string())
            .arg(if spec.profile { "profile" } else { "plain" })
            .env(URL_ENV, spec.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot start a worker process: {error}"))?;
        let stdout = child.stdout.take().ok_or("a worker has no stdout")?;
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(WorkerProcess {
            stdin: child.stdin.take(),
            child,
            lines: receiver,
        })
    }

    /// The first line of the worker's that starts with `prefix`.
    pub(crate) fn wait_for(&mut self, prefix: &str, deadline: Instant) -> Result<String, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(line) => eprintln!("server_throughput: a worker said: {line}"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "worker {} did not say `{prefix}` within {WORKER_LIMIT:?}",
                        self.child.id()
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|status| status.to_string());
                    return Err(format!(
                        "worker {} exited ({}) before saying `{prefix}`",
                        self.child.id(),
                        status.unwrap_or_else(|error| error.to_string())
                    ));
                }
            }
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Only a worker left running by a failure is still there to kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops every worker at once, then collects their reports and exit statuses.
pub(crate) fn finish(mut workers: Vec<WorkerProcess>) -> Result<Vec<WorkerReport>, String> {
    for worker in &mut workers {
        drop(worker.stdin.take());
    }
    let deadline = Instant::now() + WORKER_LIMIT;
    let mut reports = Vec::with_capacity(workers.len());
    for worker in &mut workers {
        let line = worker.wait_for("result ", deadline)?;
        reports.push(WorkerReport::parse(&line)?);
    }
    for worker in &mut workers {
        let status = loop {
            match worker.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => return Err("a worker did not exit after reporting".to_owned()),
                Err(error) => return Err(format!("cannot wait for a worker: {error}")),
            }
        };
        if !status.success() {
            return Err(format!("a worker exited with {status}"));
        }
    }
    Ok(reports)
}

/// What a worker tells the coordinator at the end, as one line.
pub(crate) struct WorkerReport {
    pub(crate) count: u64,
    pub(crate) sum: u64,
    pub(crate) strange: u64,
    pub(crate) failed: u64,
    pub(crate) first_ns: u64,
    pub(crate) last_ns: u64,
    /// CPU time (user and system) the worker used from saying ready until it reported.
    pub(crate) cpu_ns: u64,
    pub(crate) bits: Vec<u64>,
    pub(crate) profile: Option<Profile>,
}

impl WorkerReport {
    pub(crate) fn line(&self) -> String {
        let bits: String = self
            .bits
            .iter()
            .map(|word| format!("{word:016x}"))
            .collect();
        let mut line = format!(
            "result count={} sum={} strange={} failed={} first_ns={} last_ns={} cpu_ns={} \
             seen={bits}",
            self.count,
            self.sum,
            self.strange,
            self.failed,
            self.first_ns,
            self.last_ns,
            self.cpu_ns
        );
        if let Some(profile) = &self.profile {
            line.push(' ');
            line.push_str(&profile.fields());
        }
        line
    }

    pub(crate) fn parse(line: &str) -> Result<WorkerReport, String> {
        let bad = || format!("a worker's report is unreadable: {line:.200}");
        let mut report = WorkerReport {
            count: 0,
            sum: 0,
            strange: 0,
            failed: 0,
            first_ns: u64::MAX,
            last_ns: 0,
            cpu_ns: 0,
            bits: Vec::new(),
            profile: None,
        };
        for field in line.split_whitespace().skip(1) {
            let (name, value) = field.split_once('=').ok_or_else(bad)?;
            let int = || value.parse::<u64>().map_err(|_| bad());
            match name {
                "count" => report.count = int()?,
                "sum" => report.sum = int()?,
                "strange" => report.strange = int()?,
                "failed" => report.failed = int()?,
                "first_ns" => report.first_ns = int()?,
                "last_ns" => report.last_ns = int()?,
                "cpu_ns" => report.cpu_ns = int()?,
                "seen" => {
                    report.bits = (0..value.len())
                        .step_by(16)
                        .map(|at| {
                            value
                                .get(at..at + 16)
                                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                        })
                        .collect::<Option<_>>()
                        .ok_or_else(bad)?;
                }
                _ => {
                    let profile = report.profile.get_or_insert_with(Profile::default);
                    if !profile.read(name, value) {
                        return Err(bad());
                    }
                }
            }
        }
        Ok(report)
    }
}

/// `worker <backend> <side> <namespace> <events> <profile|plain>`, the URL in [`URL_ENV`].
pub(crate) fn worker_main(args: &[String]) -> ExitCode {
    let parsed = (|| {
        let [backend, side, namespace, events, profile] = args else {
            return None;
        };
        Some((
            Backend::parse(backend)?,
            Side::parse(side)?,
            namespace.clone(),
            events.parse::<u64>().ok()?,
            profile == "profile",
        ))
    })();
    let Some((backend, side, namespace, events, profile)) = parsed else {
        eprintln!("server_throughput worker: bad arguments {args:?}");
        return ExitCode::from(2);
    };
    let Ok(url) = std::env::var(URL_ENV) else {
        eprintln!("server_throughput worker: {URL_ENV} is not set");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("server_throughput worker: cannot build the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let tally = Tally::new(events);
    let stop = Stop::on_end_of_stdin();
    let worked = runtime.block_on(async {
        match (backend, side) {
            (Backend::Postgres, Side::Emitter) => {
                let store = postgres_store(&url, &namespace).await?;
                emitter_worker(store, tally, stop, profile).await
            }
            (Backend::Redis, Side::Emitter) => {
                let store = redis_store(&url, &namespace).await?;
                emitter_worker(store, tally, stop, profile).await
            }
            (Backend::Postgres, Side::Baseline) => pg_worker(&url, &namespace, tally, stop).await,
            (Backend::Redis, Side::Baseline) => redis_worker(&url, &namespace, tally, stop).await,
        }
    });
    match worked {
        Ok(mut report) => {
            let since_ready = own_cpu()
                .zip(READY_CPU.get())
                .map(|(now, ready)| now.saturating_sub(*ready));
            report.cpu_ns =
                since_ready.map_or(0, |cpu| u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX));
            println!("{}", report.line());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("server_throughput worker {}: {error}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// The worker's CPU time when it said ready.
pub(crate) static READY_CPU: OnceLock<Duration> = OnceLock::new();

pub(crate) fn say_ready() {
    if let Some(cpu) = own_cpu() {
        let _ = READY_CPU.set(cpu);
    }
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
}

/// Set when the coordinator closes the worker's stdin; also wakes an idle baseline worker.
#[derive(Clone)]
pub(crate) struct Stop {
    pub(crate) stopped: Arc<AtomicBool>,
    pub(crate) wake: Arc<Notify>,
}

impl Stop {
    pub(crate) fn on_end_of_stdin() -> Stop {
        let stop = Stop {
            stopped: Arc::default(),
            wake: Arc::default(),
        };
        let signal = stop.clone();
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            signal.stopped.store(true, Ordering::Release);
            wake(&signal.wake);
        });
        stop
    }

    pub(crate) fn is_set(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) async fn wait(&self) {
        loop {
            let woken = self.wake.notified();
            if self.is_set() {
                return;
            }
            woken.await;
        }
    }
}

/// Wakes every waiter, and the next one to come if none waits (as the PostgreSQL store does).
pub(crate) fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

pub(crate) async fn emitter_worker<S: Store>(
    store: S,
    tally: Tally,
    stop: Stop,
    profile: bool,
) -> Result<WorkerReport, String> {
    if !profile {
        return emitter_worker_with(store, tally, stop, None).await;
    }
    let stats = Arc::new(Stats::default());
    let store = Profiled {
        store,
        stats: Arc::clone(&stats),
    };
    emitter_worker_with(store, tally, stop, Some(&*stats)).await
}

pub(crate) async fn emitter_worker_with<S: Store>(
    store: S,
    tally: Tally,
    stop: Stop,
    stats: Option<&Stats>,
) -> Result<WorkerReport, String> {
    let backend =
        Durable::with_config(store, DurableConfig::default().max_in_flight(MAX_IN_FLIGHT));
    let emitter = Emitter::builder()
        .listeners(listeners![count])
        .state(tally.clone())
        .backend(backend)
        .start()
        .await
        .map_err(|error| format!("the worker's emitter did not start: {error}"))?;
    say_ready();
    stop.wait().await;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("the worker's shutdown failed: {error}"))?;
    Ok(tally.report(emitter.metrics().failed, stats))
}
