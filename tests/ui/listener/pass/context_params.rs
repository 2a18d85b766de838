//! Context parameters: `EventMeta`, `Emitter` and `State<T>`, each owned or borrowed, next to
//! fields, in async and plain functions.
use std::sync::Arc;

use emitter::{listener, Emitter, Event, EventMeta, State};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Clone)]
pub struct Mailer {
    pub from: Arc<str>,
}

#[listener(events = [UserCreated])]
async fn owned(meta: EventMeta, emitter: Emitter, mailer: State<Mailer>, email: &str) {
    let _ = (meta.event_id(), emitter, &mailer.from, email);
}

#[listener(events = [UserCreated])]
async fn borrowed(email: &str, meta: &EventMeta, emitter: &Emitter, mailer: &State<Mailer>) {
    let _ = (email, meta.attempt(), emitter, &mailer.0.from);
}

#[listener(events = [UserCreated])]
fn sync(meta: &EventMeta, emitter: Emitter, mailer: State<Mailer>) {
    let _ = (meta.emit_id(), emitter, mailer);
}

#[listener(events = [UserCreated])]
async fn paths(meta: emitter::EventMeta, mailer: emitter::State<Mailer>) {
    let _ = (meta, mailer);
}

fn main() {}
