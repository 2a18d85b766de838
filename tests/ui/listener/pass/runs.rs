//! The adapters bind what the listeners asked for: fields (borrowed, owned, converted), the whole
//! event, metadata and state, for async and plain listeners, when the event is emitted.
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, Emitter, Event, EventMeta, State};

#[derive(Event, Clone)]
pub struct UserCreated {
    pub email: String,
    pub id: u64,
    pub tags: Vec<String>,
    pub nickname: Option<String>,
}

#[derive(Event)]
pub struct PasswordChanged {
    pub email: String,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

#[listener(events = [UserCreated, PasswordChanged])]
async fn both(email: &str, meta: &EventMeta, log: State<Log>) {
    log.push(format!("both {} {email}", meta.event_id()));
}

#[listener(events = [UserCreated])]
async fn fields(id: u64, tags: &[String], nickname: Option<&str>, log: &State<Log>) {
    log.push(format!("fields {id} {} {nickname:?}", tags.join(",")));
}

#[listener(events = [UserCreated])]
fn whole(event: UserCreated, log: State<Log>) -> Result<(), String> {
    log.push(format!("whole {}", event.email));
    Ok(())
}

#[tokio::main]
async fn main() {
    let log = Log::default();
    let emitter = Emitter::builder()
        .listeners(listeners![both, fields, whole])
        .state(log.clone())
        .start()
        .await
        .unwrap();
    let tags = vec!["new".to_owned(), "beta".to_owned()];
    emit!(emitter, UserCreated, email = "jane@example.com", id = 7, tags, nickname = Some("jj".to_owned())).unwrap();
    emit!(emitter, PasswordChanged, email = "joe@example.com").unwrap();
    emitter.shutdown().await.unwrap();
    let mut lines = log.0.lock().unwrap().clone();
    lines.sort();
    assert_eq!(
        lines,
        [
            "both password_changed joe@example.com",
            "both user_created jane@example.com",
            "fields 7 new,beta Some(\"jj\")",
            "whole jane@example.com",
        ]
    );
}
