//! The coordinating process: the rounds, the timings, the checks, the table.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use emitter_bench::profile::Profile;
use tokio::runtime::Runtime;

use emitter_bench::check;

use crate::cli::{Backend, Options, Side};
use crate::cpu::{own_cpu, server_cpu, Cpu};
use crate::produce::{cleanup, prepare, produce, Produced};
use crate::servers::Server;
use crate::stats::{median, sum_below, thousands};
use crate::workers::{finish, WorkerProcess, WorkerReport, WorkerSpec};
use crate::WORKER_LIMIT;

// The coordinator. ------------------------------------------------------------------------------

/// Where one backend's server is, and the private server behind it, if we started it.
pub(crate) struct Target {
    pub(crate) backend: Backend,
    pub(crate) url: String,
    pub(crate) server: Option<Server>,
    pub(crate) description: String,
}

/// Runs every measurement; `Ok(false)` when some failed (they were reported as they failed).
pub(crate) fn coordinate(options: &Options) -> Result<bool, String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# server_throughput: {} events per run, {} round(s) after a warm-up round, emitter and \
         baseline alternating which goes first; worker processes {:?}; {cores} cores; eps = \
         events per second from the first event until the producer sees the store settled",
        options.events, options.rounds, options.workers
    );
    let mut targets = Vec::new();
    for &backend in &options.backends {
        let given = match backend {
            Backend::Redis => options.redis_url.clone(),
            Backend::Postgres => options.postgres_url.clone(),
        };
        let target = match given {
            Some(url) => Target {
                backend,
                url,
                server: None,
                description: "the server given by URL".to_owned(),
            },
            None => {
                let server = match backend {
                    Backend::Redis => Server::redis()?,
                    Backend::Postgres => Server::postgres()?,
                };
                Target {
                    backend,
                    url: server.url(),
                    description: server.description(),
                    server: Some(server),
                }
            }
        };
        println!("# {}: {}", backend.name(), target.description);
        targets.push(target);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot build the runtime: {error}"))?;
    let mut rows = Vec::new();
    let mut all_passed = true;
    for target in &targets {
        for &workers in &options.workers {
            let bench = Bench {
                runtime: &runtime,
                options,
                backend: target.backend,
                url: &target.url,
                server_pid: target.server.as_ref().and_then(Server::pid),
                workers,
            };
            match bench.measure() {
                Ok(row) => rows.push(row),
                Err(error) => {
                    all_passed = false;
                    eprintln!(
                        "server_throughput: FAILED: {} with {workers} worker(s): {error}",
                        target.backend.name()
                    );
                    rows.push(Row {
                        backend: target.backend,
                        workers,
                        emitter: f64::NAN,
                        baseline: f64::NAN,
                        failed: true,
                    });
                }
            }
        }
    }
    println!();
    println!("| backend | workers | emitter ev/s | baseline ev/s | ratio |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        let ratio = row.emitter / row.baseline;
        let ratio = if row.failed {
            "failed".to_owned()
        } else if ratio.is_nan() {
            "-".to_owned()
        } else if ratio < 0.5 {
            format!("{ratio:.2} (below 0.5)")
        } else {
            format!("{ratio:.2}")
        };
        println!(
            "| {} | {} | {} | {} | {ratio} |",
            row.backend.name(),
            row.workers,
            thousands(row.emitter),
            thousands(row.baseline)
        );
    }
    println!(
        "(medians of {} round(s); target ratio >= 0.5)",
        options.rounds
    );
    Ok(all_passed)
}

pub(crate) struct Row {
    pub(crate) backend: Backend,
    pub(crate) workers: usize,
    pub(crate) emitter: f64,
    pub(crate) baseline: f64,
    pub(crate) failed: bool,
}

/// The measurements of one backend with one number of workers.
pub(crate) struct Bench<'a> {
    pub(crate) runtime: &'a Runtime,
    pub(crate) options: &'a Options,
    pub(crate) backend: Backend,
    pub(crate) url: &'a str,
    /// The private server's process, whose CPU time is measured.
    pub(crate) server_pid: Option<u32>,
    pub(crate) workers: usize,
}

/// One run's time to the end, and when its phases ended, from the first event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Emitter: every emit stored (`wait_idle` returned). Baseline: the last insert returned.
    pub(crate) stored: Duration,
    /// A worker ran the first event.
    pub(crate) first: Duration,
    /// A worker ran the last event.
    pub(crate) delivered: Duration,
    /// The producer saw the store settled.
    pub(crate) total: Duration,
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored_ms={} first_ms={} delivered_ms={} done_ms={}",
            self.stored.as_millis(),
            self.first.as_millis(),
            self.delivered.as_millis(),
            self.total.as_millis()
        )
    }
}

/// A checked run.
pub(crate) struct Outcome {
    pub(crate) timing: Timing,
    pub(crate) cpu: Cpu,
    pub(crate) duplicates: u64,
    pub(crate) profile: Option<Profile>,
}

impl Outcome {
    pub(crate) fn eps(&self, events: u64) -> f64 {
        events as f64 / self.timing.total.as_secs_f64()
    }
}

impl Bench<'_> {
    pub(crate) fn measure(&self) -> Result<Row, String> {
        let events = self.options.events;
        let mut eps: [Vec<f64>; 2] = Default::default();
        for round in 0..=self.options.rounds {
            let mut order = self.options.sides.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            let mut outcomes: [Option<Outcome>; 2] = [None, None];
            for &side in &order {
                let outcome = self
                    .run(side, false)
                    .map_err(|error| format!("{}, round {round}: {error}", side.name()))?;
                outcomes[side as usize] = Some(outcome);
            }
            let label = if round == 0 {
                "warm-up".to_owned()
            } else {
                format!("round={round}")
            };
            let mut line = format!(
                "{} workers={} {label} first={}",
                self.backend.name(),
                self.workers,
                order[0].name()
            );
            for side in [Side::Emitter, Side::Baseline] {
                if let Some(outcome) = &outcomes[side as usize] {
                    line.push_str(&format!(
                        " {}_eps={:.0} ({} {} dups={})",
                        side.name(),
                        outcome.eps(events),
                        outcome.timing,
                        outcome.cpu,
                        outcome.duplicates
                    ));
                    if round > 0 {
                        eps[side as usize].push(outcome.eps(events));
                    }
                }
            }
            if let [Some(e), Some(b)] = &outcomes {
                line.push_str(&format!(" ratio={:.2}", e.eps(events) / b.eps(events)));
            }
            println!("{line}");
        }
        let [emitter, baseline] = eps.map(|mut samples| median(&mut samples));
        println!(
            "{} workers={} events={events} rounds={} emitter_eps_median={emitter:.0} \
             baseline_eps_median={baseline:.0} ratio={:.2}",
            self.backend.name(),
            self.workers,
            self.options.rounds,
            emitter / baseline
        );
        if self.options.profile {
            let profiled = self
                .run(Side::Emitter, true)
                .map_err(|error| format!("emitter, profiled: {error}"))?;
            println!(
                "profile: {} workers={} emitter_eps={:.0} ({} {}); store calls as the engine \
                 awaited them, producer and workers summed (each call is one round trip):",
                self.backend.name(),
                self.workers,
                profiled.eps(events),
                profiled.timing,
                profiled.cpu
            );
            if let Some(profile) = &profiled.profile {
                profile.print(events);
            }
        }
        Ok(Row {
            backend: self.backend,
            workers: self.workers,
            emitter,
            baseline,
            failed: false,
        })
    }

    /// One run of one side in a namespace of its own (a schema, a key prefix), dropped after.
    pub(crate) fn run(&self, side: Side, profile: bool) -> Result<Outcome, String> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let namespace = format!(
            "st{}_{}_{}_w{}_{}",
            std::process::id(),
            &self.backend.name()[..2],
            &side.name()[..1],
            self.workers,
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let events = self.options.events;
        self.runtime
            .block_on(prepare(self.backend, side, self.url, &namespace))?;
        let ran = (|| {
            let spec = WorkerSpec {
                backend: self.backend,
                side,
                url: self.url,
                namespace: &namespace,
                events,
                profile,
            };
            let mut workers = (0..self.workers)
                .map(|_| WorkerProcess::spawn(&spec))
                .collect::<Result<Vec<_>, _>>()?;
            let deadline = Instant::now() + WORKER_LIMIT;
            for worker in &mut workers {
                worker.wait_for("ready", deadline)?;
            }
            let server_before = self.server_pid.and_then(server_cpu);
            let producer_before = own_cpu();
            let produced = self.runtime.block_on(produce(
                self.backend,
                side,
                self.url,
                &namespace,
                events,
                profile,
            ))?;
            let producer = own_cpu()
                .zip(producer_before)
                .map(|(after, before)| after.saturating_sub(before));
            let reports = finish(workers)?;
            let server = server_before
                .zip(self.server_pid.and_then(server_cpu))
                .map(|(before, after)| after.saturating_sub(before));
            let cpu = Cpu {
                producer,
                workers: reports
                    .iter()
                    .map(|report| Duration::from_nanos(report.cpu_ns))
                    .sum(),
                server,
            };
            Ok::<_, String>((produced, reports, cpu))
        })();
        let cleaned = self
            .runtime
            .block_on(cleanup(self.backend, self.url, &namespace));
        let (produced, reports, cpu) = ran?;
        cleaned?;
        verify(side, events, &produced, &reports, cpu)
    }
}

/// Checks what the workers reported against what was produced.
pub(crate) fn verify(
    side: Side,
    events: u64,
    produced: &Produced,
    reports: &[WorkerReport],
    cpu: Cpu,
) -> Result<Outcome, String> {
    let mut seen = vec![0u64; usize::try_from(events.div_ceil(64)).unwrap_or(0)];
    let (mut count, mut sum, mut strange, mut failed) = (0u64, 0u64, 0u64, 0u64);
    let (mut first_ns, mut last_ns) = (u64::MAX, 0u64);
    let mut profile = produced.profile.clone();
    for report in reports {
        if report.bits.len() != seen.len() {
            return Err(format!(
                "a worker reported {} words of seen events, expected {}",
                report.bits.len(),
                seen.len()
            ));
        }
        for (all, word) in seen.iter_mut().zip(&report.bits) {
            *all |= word;
        }
        count += report.count;
        sum += report.sum;
        strange += report.strange;
        failed += report.failed;
        first_ns = first_ns.min(report.first_ns);
        last_ns = last_ns.max(report.last_ns);
        if let (Some(total), Some(part)) = (profile.as_mut(), report.profile.as_ref()) {
            total.add(part);
        }
    }
    let distinct: u64 = seen.iter().map(|word| u64::from(word.count_ones())).sum();
    check("events with a number out of range", strange, 0)?;
    check("listener failures", failed, 0)?;
    check("distinct events delivered", distinct, events)?;
    let duplicates = count.saturating_sub(distinct);
    if side == Side::Baseline {
        check("baseline events processed", count, events)?;
    }
    if duplicates == 0 {
        check("sum of the events' numbers", sum, sum_below(events))?;
    }
    let since = |ns: u64| Duration::from_nanos(ns.saturating_sub(produced.started_ns));
    Ok(Outcome {
        timing: Timing {
            stored: produced.stored,
            first: since(first_ns),
            delivered: since(last_ns),
            total: produced.total,
        },
        cpu,
        duplicates,
        profile,
    })
}
