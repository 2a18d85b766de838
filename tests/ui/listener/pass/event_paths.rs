//! Events may be given by path (`crate::events::UserCreated`, `events::PasswordChanged`), and
//! listeners may live in modules and be `pub`.
mod events {
    use emitter::Event;

    #[derive(Event, Clone)]
    pub struct UserCreated {
        pub email: String,
    }

    #[derive(Event)]
    pub struct PasswordChanged {
        pub email: String,
    }
}

mod listeners {
    use emitter::listener;

    #[listener(events = [crate::events::UserCreated, super::events::PasswordChanged])]
    pub async fn send_email(email: &str) {
        let _ = email;
    }

    #[listener(events = [crate::events::UserCreated])]
    pub(crate) fn whole(event: &crate::events::UserCreated) {
        let _ = &event.email;
    }
}

#[emitter::listener(events = [events::PasswordChanged])]
async fn fully_qualified_attribute(email: &str) {
    let _ = email;
}

fn main() {
    let _ = emitter::listeners![listeners::send_email, listeners::whole, fully_qualified_attribute];
}
