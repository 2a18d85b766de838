//! Without `#[event(id = ...)]` the id is the snake_case type name.
use emitter::Event;

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Event)]
pub struct HTTPRequestSent {
    pub url: String,
}

fn main() {
    assert_eq!(UserCreated::ID, "user_created");
    assert_eq!(HTTPRequestSent::ID, "http_request_sent");
}
