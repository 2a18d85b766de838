//! A field's type implements neither `Serialize` nor `Deserialize`.
use emitter::Event;

pub struct Address {
    pub city: String,
}

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub address: Address,
}

fn main() {}
