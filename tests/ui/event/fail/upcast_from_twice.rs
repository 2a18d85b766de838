//! Two upcasters read version 1.
use serde_json::Value;
use emitter::Event;

fn v1_to_v2(value: Value) -> Result<Value, String> {
    Ok(value)
}

#[derive(Event)]
#[event(version = 2, upcast(from = 1, with = v1_to_v2), upcast(from = 1, with = v1_to_v2))]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
