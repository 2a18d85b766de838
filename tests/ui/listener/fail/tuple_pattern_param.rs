//! A parameter is a tuple pattern, so no name says which field it binds.
use emitter::{listener, Event};

#[derive(Event)]
pub struct Moved {
    pub from: (i32, i32),
}

#[listener(events = [Moved])]
async fn on_moved((x, y): (i32, i32)) {
    let _ = (x, y);
}

fn main() {}
