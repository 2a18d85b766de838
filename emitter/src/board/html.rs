//! Writing the pages: escaping, the layout every page shares, times and ages, the sparklines.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::durable::admin::Activity;

/// `text` escaped for HTML text and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `text` as one segment of a URL path: everything but unreserved characters percent-encoded
/// (delivery ids hold `/` and `:`; listener names may hold anything).
pub(super) fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// `pairs` as a query string (`a=1&b=2`), empty values left out.
pub(super) fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if !value.is_empty() {
            serializer.append_pair(name, value);
        }
    }
    serializer.finish()
}

/// `time` in UTC, to the second.
pub(super) fn time(time: SystemTime) -> String {
    DateTime::<Utc>::from(time)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// `time` as an RFC 3339 instant, for `<time datetime>` and the filters.
pub(super) fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A duration in words, to its two largest units: `3m 20s`, `2h 5m`, `4d 1h`, `800ms`.
pub(super) fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut left = seconds;
    for (size, unit) in units {
        if left >= size {
            parts.push(format!("{}{unit}", left / size));
            left %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// How long ago `then` was, or how long until it comes, seen from `now`: `3m 20s ago`, `in 5s`.
pub(super) fn relative(then: SystemTime, now: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(ago) => format!("{} ago", span(ago)),
        Err(ahead) => format!("in {}", span(ahead.duration())),
    }
}

/// A `<time>` element: the relative time, the exact one on hover.
pub(super) fn when(then: SystemTime, now: SystemTime) -> String {
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        rfc3339(then),
        time(then),
        escape(&relative(then, now))
    )
}

/// A sparkline of a listener's minutes (oldest first) as inline SVG: deliveries in green,
/// failures in red, each scaled to the busiest minute; the numbers in its title.
pub(super) fn sparkline(minutes: &[Activity]) -> String {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 28.0;
    let delivered: Vec<u64> = minutes.iter().map(|minute| minute.delivered).collect();
    let failed: Vec<u64> = minutes
        .iter()
        .map(|minute| minute.failed + minute.retried)
        .collect();
    let top = delivered
        .iter()
        .chain(&failed)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = WIDTH / (minutes.len().max(2) - 1) as f64;
    let line = |values: &[u64]| -> String {
        values
            .iter()
            .enumerate()
            .map(|(at, value)| {
                let x = at as f64 * step;
                let y = HEIGHT - 2.0 - (*value as f64 / top) * (HEIGHT - 4.0);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let total_delivered: u64 = delivered.iter().sum();
    let total_failed: u64 = failed.iter().sum();
    let label = format!(
        "last {} minutes: {total_delivered} delivered, {total_failed} failed or retried",
        minutes.len()
    );
    format!(
        "<svg class=\"spark\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} \
         {HEIGHT}\" role=\"img\" aria-label=\"{label}\"><title>{label}</title>\
         <polyline fill=\"none\" stroke=\"#2e8540\" stroke-width=\"1.5\" points=\"{}\"/>\
         <polyline fill=\"none\" stroke=\"#c9302c\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        line(&delivered),
        line(&failed)
    )
}

/// What every page shows around its content.
pub(super) struct Layout<'a> {
    /// Where the board is mounted (`""` at the root).
    pub(super) base: &'a str,
    /// The page's title.
    pub(super) title: &'a str,
    /// Whether writes are allowed, and whether the browser has a session.
    pub(super) writes: bool,
    pub(super) signed_in: bool,
    /// The session's CSRF token, for the log-out form.
    pub(super) csrf: Option<&'a str>,
    /// A notice to show above the content (what an action did).
    pub(super) notice: Option<&'a str>,
}

impl Layout<'_> {
    /// The whole page around `content`.
    pub(super) fn page(&self, content: &str) -> String {
        let base = escape(self.base);
        let auth = match (self.writes, self.signed_in, self.csrf) {
            (false, _, _) => "<span class=\"badge\">read-only</span>".to_owned(),
            (true, true, Some(csrf)) => format!(
                "<form method=\"post\" action=\"{base}/logout\" class=\"inline\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <span class=\"badge ok\">writes allowed</span> \
                 <button type=\"submit\" class=\"link\">log out</button></form>",
                escape(csrf)
            ),
            (true, _, _) => format!("<a href=\"{base}/login\" id=\"login-link\">log in to act</a>"),
        };
        let notice = self
            .notice
            .map(|notice| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(notice)))
            .unwrap_or_default();
        let nav: String = ["waiting", "scheduled", "running", "dead"]
            .iter()
            .map(|state| format!("<a href=\"{base}/deliveries?state={state}\">{state}</a>"))
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · emitter</title>\
             <link rel=\"stylesheet\" href=\"{base}/assets/board.css\">\
             <script src=\"{base}/assets/board.js\" defer></script></head>\
             <body><header><a class=\"brand\" href=\"{base}/\">emitter</a>\
             <nav><a href=\"{base}/\">overview</a> {nav}</nav><div class=\"auth\">{auth}</div>\
             </header><main><h1>{title}</h1>{notice}{content}</main></body></html>\n",
            title = escape(self.title),
        )
    }
}
