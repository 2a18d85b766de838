//! Smoke test while building the core.
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, Emitter, EventMeta, State, Event};

#[derive(Event, Debug, Clone)]
pub struct UserCreated {
    pub email: String,
    pub id: u64,
}

#[derive(Event, Debug, Clone)]
pub struct PasswordChanged {
    pub email: String,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

#[listener(events = [UserCreated, PasswordChanged])]
async fn on_user(email: &str, meta: EventMeta, log: State<Log>) {
    log.0 .0.lock().unwrap().push(format!("{}:{}", meta.event_id(), email));
}

#[listener(events = [UserCreated])]
fn on_created_sync(ev: &UserCreated, id: u64, log: State<Log>) -> Result<(), std::io::Error> {
    log.0 .0.lock().unwrap().push(format!("sync:{}:{}", ev.email, id));
    Ok(())
}

#[tokio::test]
async fn smoke() {
    let log = Log::default();
    let emitter = Emitter::builder()
        .listeners(listeners![on_user, on_created_sync])
        .state(log.clone())
        .start()
        .await
        .unwrap();
    println!("{}", emitter.table());
    emit!(emitter, UserCreated, email = "a@b.c", id = 7).unwrap();
    emit!(emitter, PasswordChanged, email = "x@y.z").unwrap();
    emitter.shutdown().await.unwrap();
    let mut got = log.0.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, vec!["password_changed:x@y.z", "sync:a@b.c:7", "user_created:a@b.c"]);
    assert!(matches!(emit!(emitter, PasswordChanged, email = "x").unwrap_err(), emitter::EmitError::ShutDown));
}
