//! `Mail` is listed in `events` but does not derive `Event`.
use emitter::listener;

pub struct Mail {
    pub email: String,
}

#[listener(events = [Mail])]
async fn on_mail(email: &str) {
    let _ = email;
}

fn main() {}
