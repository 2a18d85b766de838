//! A listener in another module takes a private field of the event.
mod events {
    use emitter::Event;

    #[derive(Event)]
    pub struct UserCreated {
        pub email: String,
        password_hash: String,
    }

    impl UserCreated {
        pub fn new(email: String) -> Self {
            UserCreated { email, password_hash: String::new() }
        }
    }
}

mod listeners {
    use emitter::listener;

    #[listener(events = [crate::events::UserCreated])]
    async fn on_user(email: &str, password_hash: &str) {
        let _ = (email, password_hash);
    }
}

fn main() {
    let _ = events::UserCreated::new("jane@example.com".to_owned());
}
