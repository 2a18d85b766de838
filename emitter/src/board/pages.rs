//! The pages: the overview, a listing of deliveries, one delivery, the login form.

use std::fmt::Write;
use std::time::SystemTime;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::forms::Fields;
use super::html::{self, escape, segment, when, Layout};
use super::{Base, Shared, State};
use crate::durable::admin::{
    Admin, DeliveryDetail, DeliveryState, ListenerOverview, Overview, Query, Step,
};

/// How many minutes the overview's rate is averaged over.
const RATE_MINUTES: usize = 5;

/// What a page needs to know of the request: where the board is, the session, the notice.
pub(super) struct Context {
    pub(super) base: String,
    /// The session's CSRF token, when the browser has an open session.
    pub(super) csrf: Option<String>,
    pub(super) writes: bool,
    pub(super) notice: Option<String>,
}

impl Context {
    pub(super) fn of<S: Admin>(
        board: &Shared<S>,
        base: String,
        headers: &HeaderMap,
        fields: &Fields,
    ) -> Context {
        Context {
            base,
            csrf: board.sessions.of(headers).map(|(_, csrf)| csrf),
            writes: board.token.is_some(),
            notice: fields.get("done").map(str::to_owned),
        }
    }

    /// Whether the page shows its actions: writes are allowed and the browser has a session.
    fn acts(&self) -> bool {
        self.writes && self.csrf.is_some()
    }

    pub(super) fn page(&self, status: StatusCode, title: &str, content: &str) -> Response {
        let layout = Layout {
            base: &self.base,
            title,
            writes: self.writes,
            signed_in: self.csrf.is_some(),
            csrf: self.csrf.as_deref(),
            notice: self.notice.as_deref(),
        };
        super::html(status, layout.page(content))
    }

    /// A form that posts to `action` (under the board), with the CSRF token and where to come
    /// back to, around `fields` and a button; `confirm` asks first (with JavaScript).
    fn form(
        &self,
        action: &str,
        back: &str,
        fields: &str,
        button: &str,
        confirm: Option<&str>,
    ) -> String {
        let confirm = confirm
            .map(|text| format!(" data-confirm=\"{}\"", escape(text)))
            .unwrap_or_default();
        format!(
            "<form method=\"post\" action=\"{}{}\" class=\"inline\"{confirm}>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"back\" value=\"{}\">{fields}\
             <button type=\"submit\">{}</button></form>",
            escape(&self.base),
            escape(action),
            escape(self.csrf.as_deref().unwrap_or("")),
            escape(back),
            escape(button)
        )
    }

    /// The page for a store that failed.
    pub(super) fn failed(&self, error: &crate::BackendError) -> Response {
        self.page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The store did not answer",
            &format!("<p class=\"error\">{}</p>", escape(&error.to_string())),
        )
    }
}

pub(super) async fn overview<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let fields = Fields::parse(query.as_deref().unwrap_or(""));
    let context = Context::of(&board, base, &headers, &fields);
    match board.backend.store().overview().await {
        Ok(overview) => context.page(
            StatusCode::OK,
            "Overview",
            &overview_content(&context, &overview),
        ),
        Err(error) => context.failed(&error),
    }
}

fn overview_content(context: &Context, overview: &Overview) -> String {
    let base = escape(&context.base);
    let now = overview.at;
    let total =
        |of: fn(&ListenerOverview) -> u64| -> u64 { overview.listeners.iter().map(of).sum() };
    let paused = overview
        .listeners
        .iter()
        .filter(|listener| listener.paused_since.is_some())
        .count();
    let mut out = String::new();
    let _ = write!(
        out,
        "<section class=\"tiles\">\
         <a class=\"tile\" href=\"{base}/deliveries?state=waiting\"><b id=\"total-waiting\">{}</b> waiting</a>\
         <a class=\"tile\" href=\"{base}/deliveries?state=scheduled\"><b>{}</b> scheduled</a>\
         <a class=\"tile\" href=\"{base}/deliveries?state=running\"><b>{}</b> running</a>\
         <a class=\"tile\" href=\"{base}/deliveries?state=dead\"><b id=\"total-dead\">{}</b> dead</a>\
         <span class=\"tile\"><b>{}</b> workers</span><span class=\"tile\"><b>{paused}</b> paused</span>\
         </section>",
        total(|l| l.counts.waiting),
        total(|l| l.counts.scheduled),
        total(|l| l.counts.running),
        total(|l| l.counts.dead),
        overview.workers.len(),
    );
    if overview.listeners.is_empty() {
        out.push_str(
            "<p class=\"empty\">Nothing is stored, and no worker has sent a heartbeat yet.</p>",
        );
    } else {
        out.push_str(
            "<table class=\"listeners\"><thead><tr><th>listener</th><th class=\"num\">waiting</th>\
             <th class=\"num\">scheduled</th><th class=\"num\">running</th><th class=\"num\">dead</th>\
             <th>oldest waiting</th><th class=\"num\">delivered / min</th><th>last 30 minutes</th>\
             <th class=\"num\">workers</th><th></th></tr></thead><tbody>",
        );
        for listener in &overview.listeners {
            out.push_str(&listener_row(context, listener, now));
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h2>Workers</h2>");
    if overview.workers.is_empty() {
        out.push_str("<p class=\"empty\">No worker has sent a heartbeat lately.</p>");
    } else {
        out.push_str(
            "<table class=\"workers\"><thead><tr><th>worker</th><th>listeners</th>\
             <th>last heartbeat</th><th>counts as running until</th></tr></thead><tbody>",
        );
        for worker in &overview.workers {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&worker.worker),
                escape(&worker.listeners.join(", ")),
                when(worker.seen_at, now),
                when(worker.expires_at, now)
            );
        }
        out.push_str("</tbody></table>");
    }
    out
}

fn listener_row(context: &Context, listener: &ListenerOverview, now: SystemTime) -> String {
    let base = escape(&context.base);
    let name = listener.listener();
    let counts = &listener.counts;
    let mut badges = String::new();
    if listener.paused_since.is_some() {
        badges.push_str(" <span class=\"badge warn\">paused</span>");
    }
    if listener.is_orphan() {
        badges.push_str(
            " <span class=\"badge bad\" title=\"deliveries stored, and no running worker runs \
             this listener\">orphan</span>",
        );
    }
    let link = |state: DeliveryState, count: u64| {
        format!(
            "<td class=\"num {state}\"><a href=\"{base}/deliveries?{}\">{count}</a></td>",
            escape(&html::query([
                ("state", state.as_str()),
                ("listener", name)
            ]))
        )
    };
    let oldest = counts
        .oldest_waiting
        .map(|oldest| when(oldest, now))
        .unwrap_or_default();
    let mut actions = String::new();
    if context.acts() {
        let at = format!("/listeners/{}", segment(name));
        let (verb, label) = match listener.paused_since {
            Some(_) => ("resume", "resume"),
            None => ("pause", "pause"),
        };
        actions.push_str(&context.form(&format!("{at}/{verb}"), "/", "", label, None));
        if listener.is_orphan() {
            actions.push_str(&context.form(
                &format!("{at}/discard"),
                "/",
                "",
                "discard",
                Some(&format!(
                    "Discard every delivery of {name} that is not running, and its dead letters?"
                )),
            ));
            actions.push_str(&context.form(
                &format!("{at}/rehome"),
                "/",
                "<input name=\"to\" placeholder=\"give them to listener…\" required>",
                "rehome",
                None,
            ));
        }
    }
    format!(
        "<tr id=\"listener-{}\" data-listener=\"{}\"><th scope=\"row\"><a href=\"{base}/deliveries?{}\">{}</a>{badges}</th>\
         {}{}{}{}<td>{oldest}</td><td class=\"num\">{:.1}</td><td>{}</td><td class=\"num\">{}</td>\
         <td class=\"actions\">{actions}</td></tr>",
        segment(name),
        escape(name),
        escape(&html::query([("listener", name)])),
        escape(name),
        link(DeliveryState::Waiting, counts.waiting),
        link(DeliveryState::Scheduled, counts.scheduled),
        link(DeliveryState::Running, counts.running),
        link(DeliveryState::Dead, counts.dead),
        listener.delivered_per_minute(RATE_MINUTES),
        html::sparkline(&listener.activity),
        listener.workers,
    )
}

pub(super) async fn deliveries<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let fields = Fields::parse(query.as_deref().unwrap_or(""));
    let context = Context::of(&board, base, &headers, &fields);
    let now = SystemTime::now();
    let filtered = fields
        .state()
        .and_then(|state| Ok((state, fields.filter(now)?)));
    let (state, filter) = match filtered {
        Ok(filtered) => filtered,
        Err(problem) => {
            return context.page(
                StatusCode::BAD_REQUEST,
                "Deliveries",
                &format!(
                    "{}<p class=\"error\">{}</p>",
                    filter_form(&context, &fields),
                    escape(&problem)
                ),
            )
        }
    };
    let limit = fields
        .get("limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(50);
    let query = Query::new(state)
        .filter(filter)
        .cursor(fields.get("cursor").map(str::to_owned))
        .limit(limit);
    let page = match board.backend.store().deliveries(&query).await {
        Ok(page) => page,
        Err(error) => return context.failed(&error),
    };
    let kept = |name: &'static str| (name, fields.get(name).unwrap_or(""));
    let filters = [
        ("state", state.as_str()),
        kept("listener"),
        kept("event"),
        kept("emit"),
        kept("after"),
        kept("before"),
    ];
    let here = format!("/deliveries?{}", html::query(filters));
    let mut out = filter_form(&context, &fields);
    let time_column = match state {
        DeliveryState::Waiting => "due since",
        DeliveryState::Scheduled => "due",
        DeliveryState::Running => "lease runs out",
        DeliveryState::Dead => "failed",
    };
    if page.deliveries.is_empty() {
        let _ = write!(out, "<p class=\"empty\">No {state} delivery matches.</p>");
    } else {
        let _ = write!(
            out,
            "<table class=\"deliveries\"><thead><tr><th>id</th><th>listener</th><th>event</th>\
             <th>emit</th><th>emitted</th><th>{time_column}</th><th class=\"num\">attempts</th>\
             <th>worker</th><th>error</th></tr></thead><tbody>"
        );
        let base = escape(&context.base);
        for delivery in &page.deliveries {
            let emit = delivery.emit_id.to_string();
            let error = delivery.error.as_deref().unwrap_or("");
            let shown: String = error.chars().take(100).collect();
            let _ = write!(
                out,
                "<tr><td><a class=\"delivery\" href=\"{base}/deliveries/{}\">{}</a></td><td>{}</td>\
                 <td>{}</td><td><code title=\"{emit}\">{}…</code></td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td>{}</td><td class=\"error\" title=\"{}\">{}</td></tr>",
                segment(&delivery.id),
                escape(&delivery.id),
                escape(&delivery.listener),
                escape(&delivery.event_id),
                &emit[..8],
                when(delivery.emitted_at, now),
                when(delivery.due, now),
                delivery.attempts,
                escape(delivery.worker.as_deref().unwrap_or("")),
                escape(error),
                escape(&shown),
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<p class=\"pager\">");
    if fields.get("cursor").is_some() {
        let _ = write!(
            out,
            "<a href=\"{}{}\">first page</a> ",
            escape(&context.base),
            escape(&here)
        );
    }
    if let Some(next) = &page.next {
        let mut pairs = filters.to_vec();
        pairs.push(("cursor", next));
        let _ = write!(
            out,
            "<a rel=\"next\" href=\"{}/deliveries?{}\">next page</a>",
            escape(&context.base),
            escape(&html::query(pairs))
        );
    }
    out.push_str("</p>");
    if state == DeliveryState::Dead && context.acts() && !page.deliveries.is_empty() {
        let hidden: String = filters[1..]
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    escape(value)
                )
            })
            .collect();
        out.push_str("<p class=\"bulk\">Every dead letter this filter matches: ");
        out.push_str(&context.form(
            "/dead/replay",
            &here,
            &hidden,
            "replay all",
            Some("Replay every dead letter this filter matches?"),
        ));
        out.push_str(&context.form(
            "/dead/discard",
            &here,
            &hidden,
            "discard all",
            Some("Discard every dead letter this filter matches, for good?"),
        ));
        out.push_str("</p>");
    }
    let title = format!("Deliveries: {state}");
    context.page(StatusCode::OK, &title, &out)
}

fn filter_form(context: &Context, fields: &Fields) -> String {
    let value = |name: &str| escape(fields.get(name).unwrap_or(""));
    let current = fields.get("state").unwrap_or("waiting");
    let options: String = DeliveryState::ALL
        .iter()
        .map(|state| {
            let selected = if state.as_str() == current {
                " selected"
            } else {
                ""
            };
            format!("<option{selected}>{state}</option>")
        })
        .collect();
    format!(
        "<form method=\"get\" action=\"{}/deliveries\" class=\"filters\">\
         <label>state <select name=\"state\">{options}</select></label>\
         <label>listener <input name=\"listener\" value=\"{}\"></label>\
         <label>event <input name=\"event\" value=\"{}\"></label>\
         <label>emit id <input name=\"emit\" value=\"{}\" size=\"34\"></label>\
         <label>from <input name=\"after\" value=\"{}\" placeholder=\"15m or 2024-05-01T12:00:00Z\"></label>\
         <label>before <input name=\"before\" value=\"{}\" placeholder=\"2h\"></label>\
         <button type=\"submit\">filter</button></form>",
        escape(&context.base),
        value("listener"),
        value("event"),
        value("emit"),
        value("after"),
        value("before"),
    )
}

pub(super) async fn delivery<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let fields = Fields::parse(query.as_deref().unwrap_or(""));
    let context = Context::of(&board, base, &headers, &fields);
    match board.backend.store().delivery(&id).await {
        Ok(Some(detail)) => {
            let title = format!("Delivery {id}");
            context.page(StatusCode::OK, &title, &delivery_content(&context, &detail))
        }
        Ok(None) => context.page(
            StatusCode::NOT_FOUND,
            "No such delivery",
            &format!(
                "<p class=\"empty\">No delivery or dead letter has the id <code>{}</code>: it \
                 may have been delivered, cancelled or discarded since.</p>",
                escape(&id)
            ),
        ),
        Err(error) => context.failed(&error),
    }
}

fn delivery_content(context: &Context, detail: &DeliveryDetail) -> String {
    let now = SystemTime::now();
    let delivery = &detail.delivery;
    let base = escape(&context.base);
    let state = delivery.state;
    let time_label = match state {
        DeliveryState::Waiting => "due since",
        DeliveryState::Scheduled => "due",
        DeliveryState::Running => "lease runs out",
        DeliveryState::Dead => "failed",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<dl class=\"facts\"><dt>state</dt><dd><span class=\"badge {state}\" id=\"state\">{state}</span></dd>\
         <dt>listener</dt><dd><a href=\"{base}/deliveries?{}\">{}</a></dd>\
         <dt>event</dt><dd>{}</dd><dt>emit id</dt><dd><code>{}</code></dd>\
         <dt>emitted</dt><dd>{}</dd><dt>{time_label}</dt><dd>{}</dd>\
         <dt>attempts</dt><dd id=\"attempts\">{}</dd>",
        escape(&html::query([("state", state.as_str()), ("listener", &delivery.listener)])),
        escape(&delivery.listener),
        escape(&delivery.event_id),
        delivery.emit_id,
        when(delivery.emitted_at, now),
        when(delivery.due, now),
        delivery.attempts,
    );
    if let Some(worker) = &delivery.worker {
        let _ = write!(
            out,
            "<dt>worker</dt><dd><code>{}</code></dd>",
            escape(worker)
        );
    }
    if let Some(error) = &delivery.error {
        let label = if state == DeliveryState::Dead {
            "reason"
        } else {
            "last error"
        };
        let _ = write!(
            out,
            "<dt>{label}</dt><dd class=\"error\" id=\"error\">{}</dd>",
            escape(error)
        );
    }
    out.push_str("</dl>");
    if context.acts() {
        let at = format!("/deliveries/{}", segment(&delivery.id));
        let back = format!("/deliveries?state={state}");
        out.push_str("<p class=\"act\">");
        match state {
            DeliveryState::Waiting | DeliveryState::Scheduled => out.push_str(&context.form(
                &format!("{at}/cancel"),
                &back,
                "",
                "cancel this delivery",
                Some("Cancel this delivery? It will not run."),
            )),
            DeliveryState::Dead => {
                out.push_str(&context.form(&format!("{at}/replay"), "/", "", "replay", None));
                out.push_str(&context.form(
                    &format!("{at}/discard"),
                    &back,
                    "",
                    "discard",
                    Some("Discard this dead letter for good?"),
                ));
            }
            DeliveryState::Running => {}
        }
        out.push_str("</p>");
    } else if context.writes && state != DeliveryState::Running {
        let _ = write!(
            out,
            "<p class=\"act\"><a href=\"{base}/login\">Log in</a> to act on it.</p>"
        );
    }
    out.push_str("<h2>History</h2><ol class=\"history\">");
    for step in detail.history() {
        let line = match step {
            Step::Emitted { at } => format!("{}: emitted", when(at, now)),
            Step::Failed { attempts, error } => format!(
                "attempt {attempts} failed: <span class=\"error\">{}</span>",
                escape(&error)
            ),
            Step::Due { at } if at > now => format!("{}: due", when(at, now)),
            Step::Due { at } => format!("{}: due, waiting for a worker", when(at, now)),
            Step::Leased {
                worker,
                attempt,
                until,
            } => format!(
                "attempt {attempt} running on <code>{}</code>, its lease runs out {}",
                escape(&worker),
                when(until, now)
            ),
            Step::DeadLettered {
                at,
                attempts,
                reason,
            } => format!(
                "{}: dead-lettered after {attempts} attempts: <span class=\"error\">{}</span>",
                when(at, now),
                escape(&reason)
            ),
        };
        let _ = write!(out, "<li>{line}</li>");
    }
    let _ = write!(
        out,
        "</ol><h2>Payload</h2><pre class=\"payload\" id=\"payload\">{}</pre>",
        escape(&detail.payload_pretty())
    );
    if let Some(trace) = &detail.trace {
        let _ = write!(
            out,
            "<h2>Trace context</h2><p><code>{}</code></p>",
            escape(trace)
        );
    }
    out
}

pub(super) async fn login<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let fields = Fields::parse(query.as_deref().unwrap_or(""));
    let context = Context::of(&board, base, &headers, &fields);
    login_page(&context, StatusCode::OK, None)
}

/// The login form, with what went wrong if anything did.
pub(super) fn login_page(context: &Context, status: StatusCode, problem: Option<&str>) -> Response {
    if !context.writes {
        return context.page(
            StatusCode::FORBIDDEN,
            "Read-only",
            "<p>This board is read-only: it takes no token. Start it with writes allowed to \
             act on deliveries.</p>",
        );
    }
    let problem = problem
        .map(|problem| format!("<p class=\"error\">{}</p>", escape(problem)))
        .unwrap_or_default();
    let content = format!(
        "{problem}<form method=\"post\" action=\"{}/login\" class=\"login\">\
         <label>token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" \
         required autofocus></label> <button type=\"submit\">log in</button></form>\
         <p>The token is the one the board was started with. Scripts send it in an \
         <code>Authorization: Bearer</code> header instead.</p>",
        escape(&context.base)
    );
    context.page(status, "Log in", &content)
}
