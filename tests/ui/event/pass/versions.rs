//! A versioned event with its upcasters, chained 1 -> 2 -> 3, any error type that displays.
use serde_json::Value;
use emitter::Event;

fn v1_to_v2(mut value: Value) -> Result<Value, String> {
    value["plan"] = "free".into();
    Ok(value)
}

fn v2_to_v3(value: Value) -> Result<Value, std::io::Error> {
    Ok(value)
}

#[derive(Event)]
#[event(
    id = "user_created",
    version = 3,
    upcast(from = 2, with = v2_to_v3),
    upcast(from = 1, with = v1_to_v2)
)]
pub struct UserCreated {
    pub email: String,
    pub plan: String,
}

#[derive(Event)]
pub struct Unversioned {
    #[serde(default)]
    pub added_later: Option<String>,
}

fn main() {
    assert_eq!(<UserCreated as Event>::VERSION, 3);
    assert_eq!(<Unversioned as Event>::VERSION, 1);
}
