//! Version 3 with an upcaster from version 1 only: a stored version 2 could not be read.
use serde_json::Value;
use emitter::Event;

fn v1_to_v2(value: Value) -> Result<Value, String> {
    Ok(value)
}

#[derive(Event)]
#[event(version = 3, upcast(from = 1, with = v1_to_v2))]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
