//! The emitter may be an `Emitter`, a `&Emitter`, an `Arc<Emitter>`, a field or a call; the
//! event may be given by path.
use std::sync::Arc;

use emitter::{emit, EmitError, Emitter, Event};

mod events {
    use emitter::Event;

    #[derive(Event)]
    pub struct Ping {
        pub n: u32,
    }
}

#[derive(Event)]
pub struct Pong {}

struct App {
    emitter: Arc<Emitter>,
}

impl App {
    fn emitter(&self) -> &Emitter {
        &self.emitter
    }
}

fn main() {
    let owned: Emitter = Emitter::builder().build().unwrap();
    let borrowed: &Emitter = &owned;
    let shared: Arc<Emitter> = Arc::new(owned.clone());
    let app = App { emitter: Arc::clone(&shared) };

    let results = [
        emit!(owned, events::Ping, n = 1),
        emit!(borrowed, events::Ping, n = 2),
        emit!(shared, crate::events::Ping, n = 3),
        emit!(app.emitter, Pong),
        emit!(app.emitter(), Pong,),
    ];
    for result in results {
        assert!(matches!(result, Err(EmitError::NotStarted)));
    }
}
