//! The commands, each written once over any [`Admin`] store, answering a person (tables) or a
//! script (`--json`).

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use clap::ArgMatches;
use emitter::durable::admin::{
    Cancel, Delivery, DeliveryDetail, DeliveryState, Filter, ListenerCounts, Overview, Query, Step,
};
use emitter::durable::Admin;
use emitter::EmitId;
use serde_json::{json, Value};

use crate::failure::Failure;
use crate::table::Table;
use crate::times;

/// Where answers go, and in which form.
pub(crate) struct Out<'a> {
    pub(crate) out: &'a mut dyn Write,
    pub(crate) json: bool,
}

impl Out<'_> {
    fn json(&mut self, value: &Value) -> Result<(), Failure> {
        writeln!(self.out, "{value:#}")?;
        Ok(())
    }

    fn line(&mut self, text: impl std::fmt::Display) -> Result<(), Failure> {
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    /// A one-line answer: `text` for a person, `value` for a script.
    fn answer(&mut self, text: impl std::fmt::Display, value: Value) -> Result<(), Failure> {
        if self.json {
            self.json(&value)
        } else {
            self.line(text)
        }
    }
}

/// Runs the subcommand of `matches` on `store`.
pub(crate) async fn run<S: Admin>(
    store: &S,
    matches: &ArgMatches,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    match matches.subcommand() {
        Some(("status", _)) => status(store, out).await,
        Some(("deliveries", args)) => deliveries(store, args, out).await,
        Some(("show", args)) => show(store, required(args, "id"), out).await,
        Some(("replay", args)) => replay(store, args, out).await,
        Some(("discard", args)) => discard(store, args, out).await,
        Some(("cancel", args)) => cancel(store, args, out).await,
        Some(("pause", args)) => pause(store, required(args, "listener"), true, out).await,
        Some(("resume", args)) => pause(store, required(args, "listener"), false, out).await,
        Some(("orphans", args)) => orphans(store, args, out).await,
        Some(("subscriptions", _)) => subscriptions(store, out).await,
        Some(("unsubscribe", args)) => unsubscribe(store, args, out).await,
        Some((other, _)) => Err(Failure::usage(format!("unknown command `{other}`"))),
        None => Err(Failure::usage("which command? see `emitter --help`")),
    }
}

/// A required argument: clap has checked that it is there.
fn required<'a>(args: &'a ArgMatches, name: &str) -> &'a str {
    args.get_one::<String>(name).map_or("", String::as_str)
}

fn optional<'a>(args: &'a ArgMatches, name: &str) -> Option<&'a str> {
    args.get_one::<String>(name).map(String::as_str)
}

fn filter(args: &ArgMatches, now: SystemTime) -> Result<Filter, Failure> {
    let mut filter = Filter::new();
    if let Some(listener) = optional(args, "listener") {
        filter = filter.listener(listener);
    }
    if let Some(event) = optional(args, "event") {
        filter = filter.event_id(event);
    }
    if let Some(emit) = optional(args, "emit") {
        let emit: EmitId = emit
            .parse()
            .map_err(|error| Failure::usage(format!("--emit {}: {error}", emit.escape_debug())))?;
        filter = filter.emit_id(emit);
    }
    if let Some(after) = optional(args, "after") {
        filter = filter.after(times::parse(after, now)?);
    }
    if let Some(before) = optional(args, "before") {
        filter = filter.before(times::parse(before, now)?);
    }
    Ok(filter)
}

/// What a filter selects, in words, for a confirmation question.
fn describe(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(listener) = &filter.listener {
        parts.push(format!("listener {listener}"));
    }
    if let Some(event) = &filter.event_id {
        parts.push(format!("event {event}"));
    }
    if let Some(emit) = filter.emit_id {
        parts.push(format!("emit {emit}"));
    }
    if let Some(after) = filter.after {
        parts.push(format!("failed at or after {}", times::instant(after)));
    }
    if let Some(before) = filter.before {
        parts.push(format!("failed before {}", times::instant(before)));
    }
    if parts.is_empty() {
        "every dead letter".to_owned()
    } else {
        format!("every dead letter of {}", parts.join(", "))
    }
}

/// Goes on with a destructive command only if `--yes` was passed or the person at the terminal
/// says yes; a script without `--yes` is refused, never left waiting for an answer.
fn confirm(args: &ArgMatches, question: &str) -> Result<(), Failure> {
    if args.get_flag("yes") {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::refused(format!(
            "{question}: not confirmed (pass --yes to do it without asking)"
        )));
    }
    eprint!("{question}? [y/N] ");
    let mut answer = String::new();
    stdin.read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Failure::refused(format!("{question}: not confirmed")))
    }
}

/// A listener and its deliveries by state, as the first cells of a row.
fn count_cells(counts: &ListenerCounts) -> Vec<String> {
    let mut cells = vec![counts.listener.clone()];
    cells.extend(DeliveryState::ALL.map(|state| counts.of(state).to_string()));
    cells
}

fn counts_json(counts: &ListenerCounts) -> Value {
    let mut value = serde_json::Map::new();
    value.insert("listener".to_owned(), json!(counts.listener));
    for state in DeliveryState::ALL {
        value.insert(state.as_str().to_owned(), json!(counts.of(state)));
    }
    Value::Object(value)
}

fn time_json(time: Option<SystemTime>) -> Value {
    time.map_or(Value::Null, |time| Value::String(times::instant(time)))
}

async fn status<S: Admin>(store: &S, out: &mut Out<'_>) -> Result<(), Failure> {
    let overview = store.overview().await?;
    if out.json {
        return out.json(&status_json(&overview));
    }
    let now = overview.at;
    if overview.listeners.is_empty() {
        out.line("nothing stored, no listener paused, no worker running")?;
    } else {
        let mut table = Table::new(&[
            "LISTENER",
            "WAITING",
            "SCHEDULED",
            "RUNNING",
            "DEAD",
            "OLDEST WAITING",
            "WORKERS",
            "PER MIN",
            "NOTE",
        ]);
        for listener in &overview.listeners {
            let counts = &listener.counts;
            let mut notes = Vec::new();
            if let Some(since) = listener.paused_since {
                notes.push(format!(
                    "paused {} ago",
                    times::age(times::since(since, now))
                ));
            }
            if listener.is_orphan() {
                notes.push("orphan".to_owned());
            }
            let mut row = count_cells(counts);
            row.extend([
                counts
                    .oldest_waiting
                    .map_or_else(|| "-".to_owned(), |at| times::age(times::since(at, now))),
                listener.workers.to_string(),
                format!("{:.1}", listener.delivered_per_minute(5)),
                notes.join(", "),
            ]);
            table.row(row);
        }
        table.write(out.out)?;
    }
    out.line("")?;
    if overview.workers.is_empty() {
        out.line("no worker running (none sent a heartbeat lately)")?;
    } else {
        let mut table = Table::new(&["WORKER", "LAST SEEN", "LISTENERS"]);
        for worker in &overview.workers {
            table.row(vec![
                worker.worker.clone(),
                format!("{} ago", times::age(times::since(worker.seen_at, now))),
                worker.listeners.join(", "),
            ]);
        }
        table.write(out.out)?;
    }
    Ok(())
}

fn status_json(overview: &Overview) -> Value {
    let now = overview.at;
    let listeners: Vec<Value> = overview
        .listeners
        .iter()
        .map(|listener| {
            let counts = &listener.counts;
            let mut value = counts_json(counts);
            let more = json!({
                "oldest_waiting": time_json(counts.oldest_waiting),
                "oldest_waiting_seconds": counts
                    .oldest_waiting
                    .map(|at| times::since(at, now).as_secs()),
                "paused": listener.paused_since.is_some(),
                "paused_since": time_json(listener.paused_since),
                "workers": listener.workers,
                "orphan": listener.is_orphan(),
                "delivered_per_minute": listener.delivered_per_minute(5),
            });
            if let (Value::Object(value), Value::Object(more)) = (&mut value, more) {
                value.extend(more);
            }
            value
        })
        .collect();
    let workers: Vec<Value> = overview
        .workers
        .iter()
        .map(|worker| {
            json!({
                "worker": worker.worker,
                "listeners": worker.listeners,
                "seen_at": times::instant(worker.seen_at),
                "expires_at": times::instant(worker.expires_at),
            })
        })
        .collect();
    json!({ "at": times::instant(now), "listeners": listeners, "workers": workers })
}

fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "id": delivery.id,
        "state": delivery.state.as_str(),
        "listener": delivery.listener,
        "event_id": delivery.event_id,
        "emit_id": delivery.emit_id.to_string(),
        "emitted_at": times::instant(delivery.emitted_at),
        "due": times::instant(delivery.due),
        "attempts": delivery.attempts,
        "worker": delivery.worker,
        "error": delivery.error,
    })
}

async fn deliveries<S: Admin>(
    store: &S,
    args: &ArgMatches,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    let state: DeliveryState = required(args, "state")
        .parse()
        .map_err(|error| Failure::usage(format!("--state: {error}")))?;
    let limit = args.get_one::<u16>("limit").copied().unwrap_or(50);
    let query = Query::new(state)
        .filter(filter(args, SystemTime::now())?)
        .cursor(optional(args, "cursor").map(str::to_owned))
        .limit(usize::from(limit));
    let page = store.deliveries(&query).await?;
    if out.json {
        let deliveries: Vec<Value> = page.deliveries.iter().map(delivery_json).collect();
        return out.json(&json!({ "deliveries": deliveries, "next": page.next }));
    }
    if page.deliveries.is_empty() {
        out.line(format!("no {state} deliveries"))?;
    } else {
        let now = SystemTime::now();
        let due = match state {
            DeliveryState::Running => "LEASE ENDS",
            DeliveryState::Dead => "FAILED",
            DeliveryState::Waiting | DeliveryState::Scheduled => "DUE",
        };
        let mut table = Table::new(&[
            "ID", "LISTENER", "EVENT", due, "ATTEMPTS", "WORKER", "ERROR",
        ]);
        for delivery in &page.deliveries {
            let when = if delivery.due <= now {
                format!("{} ago", times::age(times::since(delivery.due, now)))
            } else {
                format!("in {}", times::age(times::since(now, delivery.due)))
            };
            table.row(vec![
                delivery.id.clone(),
                delivery.listener.clone(),
                delivery.event_id.clone(),
                when,
                delivery.attempts.to_string(),
                delivery.worker.clone().unwrap_or_else(|| "-".to_owned()),
                delivery
                    .error
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), one_line),
            ]);
        }
        table.write(out.out)?;
    }
    if let Some(next) = page.next {
        out.line(format!("more: add --cursor {next}"))?;
    }
    Ok(())
}

/// An error as one short line of a table.
fn one_line(error: &str) -> String {
    const MAX: usize = 60;
    let line = error.lines().next().unwrap_or("");
    if line.chars().count() > MAX || error.lines().nth(1).is_some() {
        let cut: String = line.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

async fn show<S: Admin>(store: &S, id: &str, out: &mut Out<'_>) -> Result<(), Failure> {
    let Some(detail) = store.delivery(id).await? else {
        return Err(Failure::not_found(format!(
            "no delivery or dead letter `{}`",
            id.escape_debug()
        )));
    };
    if out.json {
        return out.json(&detail_json(&detail));
    }
    let delivery = &detail.delivery;
    let mut fields = vec![
        ("id", delivery.id.clone()),
        ("state", delivery.state.to_string()),
        ("listener", delivery.listener.clone()),
        ("event", delivery.event_id.clone()),
        ("emit", delivery.emit_id.to_string()),
        ("emitted at", times::instant(delivery.emitted_at)),
        ("attempts", delivery.attempts.to_string()),
    ];
    if let Some(worker) = &delivery.worker {
        fields.push(("worker", worker.clone()));
    }
    if let Some(error) = &delivery.error {
        fields.push(("last error", error.clone()));
    }
    for (name, value) in fields {
        out.line(format!("{name:<11} {value}"))?;
    }
    out.line("\nhistory:")?;
    for step in detail.history() {
        out.line(format!("  {}", step_text(&step)))?;
    }
    out.line("\npayload:")?;
    out.line(detail.payload_pretty())
}

fn step_text(step: &Step) -> String {
    match step {
        Step::Emitted { at } => format!("{}  emitted", times::instant(*at)),
        Step::Failed { attempts, error } => {
            format!("failed after {attempts} attempt(s): {error}")
        }
        Step::Due { at } => format!("{}  due", times::instant(*at)),
        Step::Leased {
            worker,
            attempt,
            until,
        } => format!(
            "running attempt {attempt} on {worker}, leased until {}",
            times::instant(*until)
        ),
        Step::DeadLettered {
            at,
            attempts,
            reason,
        } => format!(
            "{}  dead-lettered after {attempts} attempt(s): {reason}",
            times::instant(*at)
        ),
        _ => format!("{step:?}"),
    }
}

fn detail_json(detail: &DeliveryDetail) -> Value {
    let mut value = delivery_json(&detail.delivery);
    let payload = serde_json::from_slice::<Value>(&detail.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&detail.payload).into_owned()));
    if let Value::Object(fields) = &mut value {
        fields.insert("payload".to_owned(), payload);
        fields.insert("trace".to_owned(), json!(detail.trace));
        let history: Vec<Value> = detail
            .history()
            .iter()
            .map(|step| json!(step_text(step)))
            .collect();
        fields.insert("history".to_owned(), Value::Array(history));
    }
    value
}

/// `replay` and `discard`: one dead letter by id, or every one a filter matches.
async fn dead_letters<S: Admin>(
    store: &S,
    args: &ArgMatches,
    out: &mut Out<'_>,
    replay: bool,
) -> Result<(), Failure> {
    let (verb, done) = if replay {
        ("Replay", "replayed")
    } else {
        ("Discard", "discarded")
    };
    if args.get_flag("all") {
        let filter = filter(args, SystemTime::now())?;
        if !replay {
            confirm(args, &format!("{verb} {}", describe(&filter)))?;
        }
        let count = if replay {
            store.replay_matching(&filter).await?
        } else {
            store.discard_matching(&filter).await?
        };
        return out.answer(
            format!("{done} {count} dead letter(s)"),
            json!({ done: count }),
        );
    }
    let id = required(args, "id");
    let has_filter = ["listener", "event", "emit", "after", "before"]
        .iter()
        .any(|name| args.get_one::<String>(name).is_some());
    if has_filter {
        return Err(Failure::usage(
            "filters select dead letters with --all; an id names one already",
        ));
    }
    if !replay {
        confirm(args, &format!("{verb} dead letter {id}"))?;
    }
    let found = if replay {
        store.replay(id).await?
    } else {
        store.discard(id).await?
    };
    if !found {
        return Err(Failure::not_found(format!(
            "no dead letter `{}`",
            id.escape_debug()
        )));
    }
    out.answer(
        format!("{done} dead letter {id}"),
        json!({ done: 1, "id": id }),
    )
}

async fn replay<S: Admin>(store: &S, args: &ArgMatches, out: &mut Out<'_>) -> Result<(), Failure> {
    dead_letters(store, args, out, true).await
}

async fn discard<S: Admin>(store: &S, args: &ArgMatches, out: &mut Out<'_>) -> Result<(), Failure> {
    dead_letters(store, args, out, false).await
}

async fn cancel<S: Admin>(store: &S, args: &ArgMatches, out: &mut Out<'_>) -> Result<(), Failure> {
    let id = required(args, "id");
    confirm(args, &format!("Cancel delivery {id}"))?;
    let shown = id.escape_debug();
    match store.cancel(id).await? {
        Cancel::Cancelled => out.answer(
            format!("cancelled delivery {id}"),
            json!({ "cancelled": 1, "id": id }),
        ),
        Cancel::NotFound => Err(Failure::not_found(format!(
            "no waiting or scheduled delivery `{shown}`"
        ))),
        Cancel::Running => Err(Failure::refused(format!(
            "delivery `{shown}` is running: a worker holds it"
        ))),
        Cancel::Dead => Err(Failure::refused(format!(
            "`{shown}` is a dead letter: discard it instead (emitter discard {shown})"
        ))),
    }
}

async fn pause<S: Admin>(
    store: &S,
    listener: &str,
    pause: bool,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    let changed = if pause {
        store.pause(listener).await?
    } else {
        store.resume(listener).await?
    };
    let text = match (pause, changed) {
        (true, true) => format!("paused {listener}: no worker claims its deliveries until resumed"),
        (true, false) => format!("{listener} was paused already"),
        (false, true) => format!("resumed {listener}"),
        (false, false) => format!("{listener} was not paused"),
    };
    out.answer(
        text,
        json!({ "listener": listener, "paused": pause, "changed": changed }),
    )
}

async fn subscriptions<S: Admin>(store: &S, out: &mut Out<'_>) -> Result<(), Failure> {
    let subscriptions = store.subscriptions().await?;
    if out.json {
        let listed: Vec<Value> = subscriptions
            .iter()
            .map(|subscription| {
                json!({
                    "event_id": subscription.event_id,
                    "listener": subscription.listener,
                    "concurrency": subscription.concurrency.map(|limit| limit.get()),
                    "seen_at": times::instant(subscription.seen_at),
                })
            })
            .collect();
        return out.json(&json!({ "subscriptions": listed }));
    }
    if subscriptions.is_empty() {
        return out.line("no subscriptions: no worker has started on this store yet");
    }
    let mut table = Table::new(&["EVENT", "LISTENER", "CONCURRENCY", "SEEN"]);
    for subscription in &subscriptions {
        table.row(vec![
            subscription.event_id.clone(),
            subscription.listener.clone(),
            subscription
                .concurrency
                .map_or_else(|| "-".to_owned(), |limit| limit.to_string()),
            times::instant(subscription.seen_at),
        ]);
    }
    table.write(out.out)?;
    Ok(())
}

async fn unsubscribe<S: Admin>(
    store: &S,
    args: &ArgMatches,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    let listener = required(args, "listener");
    confirm(
        args,
        &format!("Stop routing emits to {listener} (until a worker that runs it starts)"),
    )?;
    let count = store.unsubscribe(listener).await?;
    out.answer(
        format!("deleted {count} subscriptions of {listener}"),
        json!({ "listener": listener, "unsubscribed": count }),
    )
}

async fn orphans<S: Admin>(store: &S, args: &ArgMatches, out: &mut Out<'_>) -> Result<(), Failure> {
    match args.subcommand() {
        Some(("discard", args)) => {
            let listener = required(args, "listener");
            confirm(
                args,
                &format!(
                    "Discard every delivery and dead letter of {listener} that is not running"
                ),
            )?;
            let count = store.discard_listener(listener).await?;
            out.answer(
                format!("discarded {count} deliveries and dead letters of {listener}"),
                json!({ "listener": listener, "discarded": count }),
            )
        }
        Some(("rehome", args)) => {
            let (from, to) = (required(args, "from"), required(args, "to"));
            if from == to {
                return Err(Failure::usage("rehome to another listener than the orphan"));
            }
            confirm(
                args,
                &format!(
                    "Give every delivery and dead letter of {from} that is not running to {to}"
                ),
            )?;
            let count = store.rehome(from, to).await?;
            out.answer(
                format!("gave {count} deliveries and dead letters of {from} to {to}"),
                json!({ "from": from, "to": to, "rehomed": count }),
            )
        }
        _ => {
            let overview = store.overview().await?;
            let orphans: Vec<_> = overview.orphans().collect();
            if out.json {
                let listed: Vec<Value> = orphans
                    .iter()
                    .map(|orphan| counts_json(&orphan.counts))
                    .collect();
                return out.json(&json!({ "orphans": listed, "workers": overview.workers.len() }));
            }
            if orphans.is_empty() {
                return out.line(
                    "no orphans: every listener with deliveries stored has a running worker",
                );
            }
            let mut table = Table::new(&["LISTENER", "WAITING", "SCHEDULED", "RUNNING", "DEAD"]);
            for orphan in &orphans {
                table.row(count_cells(&orphan.counts));
            }
            table.write(out.out)?;
            if overview.workers.is_empty() {
                out.line("\nno worker is running: every listener with something stored is listed")?;
            }
            out.line(
                "\nemitter orphans discard LISTENER, or emitter orphans rehome FROM TO (a renamed listener)",
            )
        }
    }
}
