//! Every policy option is given a value of the wrong shape, on two listeners; each mistake is
//! reported on its own literal, all in one compilation.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

const MAX: usize = 4;

#[listener(
    events = [UserCreated],
    attempts = -1,
    backoff = 100ms..10s,
    timeout = "1.5s",
    concurrency = 4u8
)]
async fn on_user(email: &str) {
    let _ = email;
}

#[listener(
    events = [UserCreated],
    attempts = 99999999999,
    backoff = "0s..1s",
    timeout = 30,
    concurrency = MAX
)]
async fn on_user_again(email: &str) {
    let _ = email;
}

fn main() {}
