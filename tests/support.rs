//! Helpers shared by the integration tests beside this file (one test target per behaviour; see
//! `Cargo.toml`).

#[cfg(unix)]
pub mod children;
pub mod servers;

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A log line as a test sees it: its level and its message with its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The event's level.
    pub level: Level,
    /// The message, then ` field=value` for each field.
    pub text: String,
}

/// A tracing layer that keeps every event, to check what the emitter logs.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<Logged>>>);

impl LogCapture {
    /// Everything logged so far.
    pub fn lines(&self) -> Vec<Logged> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: Subscriber> Layer<S> for LogCapture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Logged {
                level: *event.metadata().level(),
                text: text.0,
            });
    }
}

/// A gate listeners wait at until the test opens it with the paired sender: how tests hold a
/// delivery in place without sleeping.
#[derive(Clone)]
pub struct Gate(watch::Receiver<bool>);

impl Gate {
    /// A closed gate and the sender that opens it (`open.send_replace(true)`).
    pub fn closed() -> (watch::Sender<bool>, Gate) {
        let (open, gate) = watch::channel(false);
        (open, Gate(gate))
    }

    /// Waits until the gate is open; an error if its sender was dropped while it was closed.
    pub async fn pass(&self) -> Result<(), watch::error::RecvError> {
        let mut gate = self.0.clone();
        gate.wait_for(|open| *open).await?;
        Ok(())
    }
}

/// A value that says, through the paired receiver, when the last clone of it is dropped: how
/// tests see that an emitter freed its state.
#[derive(Clone)]
pub struct DropProbe(Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>);

impl DropProbe {
    /// A probe and the receiver that hears when its last clone is dropped.
    pub fn new() -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(sender)))), receiver)
    }
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1 {
            if let Some(sender) = self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = sender.send(());
            }
        }
    }
}

/// A span as a test sees it: its name, its parent's name, and its fields (those recorded after
/// it was created too).
#[derive(Debug, Clone, PartialEq)]
pub struct SeenSpan {
    /// The span's id, as the subscriber gave it.
    pub id: u64,
    /// The span's name.
    pub name: &'static str,
    /// The name of its parent, if it has one.
    pub parent: Option<&'static str>,
    /// Its fields, as `(name, value)`.
    pub fields: Vec<(String, String)>,
}

impl SeenSpan {
    /// The value of field `name`, if the span has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A tracing layer that keeps every span, to check the spans the emitter makes.
#[derive(Clone, Default)]
pub struct SpanLog(Arc<Mutex<Vec<SeenSpan>>>);

impl SpanLog {
    /// The log of the subscriber that this call makes the global default of the process (once),
    /// for tests whose spans are made on several threads. It sees every span of every test of
    /// the binary: tell yours apart by their fields.
    pub fn global() -> SpanLog {
        use tracing_subscriber::layer::SubscriberExt as _;
        static GLOBAL: std::sync::OnceLock<SpanLog> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let log = SpanLog::default();
                let subscriber = tracing_subscriber::registry().with(log.clone());
                if tracing::subscriber::set_global_default(subscriber).is_err() {
                    panic!("another global tracing subscriber was set in this test binary");
                }
                log
            })
            .clone()
    }

    /// Every span named `name` so far.
    pub fn named(&self, name: &str) -> Vec<SeenSpan> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanLog {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name());
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SeenSpan {
                id: id.into_u64(),
                name: attrs.metadata().name(),
                parent,
                fields: fields.0,
            });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        values.record(&mut fields);
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(span) = spans.iter_mut().rev().find(|span| span.id == id.into_u64()) {
            span.fields.extend(fields.0);
        }
    }
}
