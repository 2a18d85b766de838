//! The attribute gives a `name` but forgets `events`.
use emitter::listener;

#[listener(name = "mailer.welcome")]
async fn on_anything(email: &str) {
    let _ = email;
}

fn main() {}
