//! An upcaster that reads the event's own version, and one without a `version` at all.
use serde_json::Value;
use emitter::Event;

fn v1_to_v2(value: Value) -> Result<Value, String> {
    Ok(value)
}

#[derive(Event)]
#[event(version = 2, upcast(from = 1, with = v1_to_v2), upcast(from = 2, with = v1_to_v2))]
pub struct UserCreated {
    pub email: String,
}

#[derive(Event)]
#[event(upcast(from = 1, with = v1_to_v2))]
pub struct UserDeleted {
    pub email: String,
}

fn main() {}
