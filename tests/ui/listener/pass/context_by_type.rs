//! Context parameters are recognised by their type, not their name: renamed imports and aliases
//! work, a parameter named like a field but typed as context is context, and the shared state an
//! aliased `State<T>` needs is checked at start like any other. The listeners receive what they
//! asked for.
use std::sync::{Arc, Mutex};

use emitter::{
    emit, listener, listeners, Emitter as Handle, Event, EventMeta as Meta, StartError, State,
};

#[derive(Event, Clone, Debug, PartialEq)]
pub struct UserCreated {
    pub email: String,
    /// A field named like a context parameter.
    pub state: String,
}

#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line);
        }
    }
}

pub type Shared = State<Log>;
pub type Created = UserCreated;

#[listener(events = [UserCreated])]
async fn renamed(meta: Meta, emitter: &Handle, log: Shared, event: &Created) {
    let _ = emitter;
    log.push(format!("renamed {} {}", meta.event_id(), event.email));
}

/// `state` is a field of the event, but a `State<Log>` parameter is context.
#[listener(events = [UserCreated])]
fn by_type(state: State<Log>, email: &str) {
    state.push(format!("by_type {email}"));
}

/// Named like the field, typed as a field: the field.
#[listener(events = [UserCreated])]
fn field_named_state(state: &str, log: &Shared) {
    log.push(format!("field {state}"));
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let without_state = Handle::builder().listeners(listeners![renamed]).start().await;
    assert!(matches!(
        without_state,
        Err(StartError::MissingState { type_name, .. }) if type_name.ends_with("Log")
    ));

    let log = Log::default();
    let emitter = Handle::builder()
        .listeners(listeners![renamed, by_type, field_named_state])
        .state(log.clone())
        .start()
        .await?;
    emit!(emitter, UserCreated, email = "jane@example.com", state = "active")?;
    emitter.wait_idle().await;
    emitter.shutdown().await?;

    let mut lines = log.0.lock().map(|lines| lines.clone()).unwrap_or_default();
    lines.sort();
    assert_eq!(
        lines,
        [
            "by_type jane@example.com",
            "field active",
            "renamed user_created jane@example.com",
        ]
    );
    Ok(())
}
