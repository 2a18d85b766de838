//! serde's attributes are accepted on the struct and its fields, without a serde dependency.
use emitter::Event;

#[derive(Event)]
#[serde(deny_unknown_fields)]
pub struct UserCreated {
    #[serde(rename = "mail")]
    pub email: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
}

fn main() {
    let event = UserCreated {
        email: "jane@example.com".to_owned(),
        tags: Vec::new(),
        nickname: None,
    };
    let _ = (event.email, event.tags, event.nickname);
}
