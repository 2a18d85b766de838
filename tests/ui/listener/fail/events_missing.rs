//! The attribute does not say which events the listener handles.
use emitter::listener;

#[listener]
async fn on_anything(email: &str) {
    let _ = email;
}

fn main() {}
