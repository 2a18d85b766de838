//! A field named with a keyword (`r#type`) is taken by the same raw name.
use emitter::{listener, Event};

#[derive(Event)]
pub struct Notified {
    pub r#type: String,
}

#[listener(events = [Notified])]
async fn on_notified(r#type: &str) {
    let _ = r#type;
}

fn main() {}
