//! The annotated function stays an ordinary function: it can be called directly.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub id: u64,
}

#[listener(events = [UserCreated])]
fn greeting(email: &str, id: u64) -> Result<(), String> {
    if email.is_empty() {
        return Err(format!("user {id} has no email"));
    }
    Ok(())
}

#[listener(events = [UserCreated])]
async fn double(id: u64) -> Result<(), std::io::Error> {
    let _ = id * 2;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(greeting("jane@example.com", 1), Ok(()));
    assert_eq!(greeting("", 7), Err("user 7 has no email".to_owned()));
    assert!(double(21).await.is_ok());
}
