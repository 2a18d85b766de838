//! Helpers shared by the integration tests beside this file (one test target per behaviour; see
//! `Cargo.toml`).

pub mod servers;

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
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
