//! `attempts`, `backoff`, `timeout` and `concurrency` override the emitter's delivery policy for
//! one listener; the registration carries the values, durations in every unit.
use std::time::Duration;

use emitter::{listener, Event, Listener};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(
    events = [UserCreated],
    attempts = 3,
    backoff = "100ms..10s",
    timeout = "30s",
    concurrency = 1
)]
async fn send_welcome(email: &str) {
    let _ = email;
}

#[listener(concurrency = 8, timeout = "5m", events = [UserCreated], backoff = "2s..1h")]
fn audit(email: &str) {
    let _ = email;
}

#[listener(events = [UserCreated], attempts = 10)]
async fn retried(email: &str) {
    let _ = email;
}

#[listener(events = [UserCreated])]
async fn default_policy(email: &str) {
    let _ = email;
}

fn main() {
    let policy = <send_welcome as Listener>::REGISTRATION.policy;
    assert_eq!(policy.attempts, Some(3));
    assert_eq!(
        policy.backoff,
        Some((Duration::from_millis(100), Duration::from_secs(10)))
    );
    assert_eq!(policy.timeout, Some(Duration::from_secs(30)));
    assert_eq!(policy.concurrency, Some(1));

    let policy = <audit as Listener>::REGISTRATION.policy;
    assert_eq!(policy.attempts, None);
    assert_eq!(
        policy.backoff,
        Some((Duration::from_secs(2), Duration::from_secs(3600)))
    );
    assert_eq!(policy.timeout, Some(Duration::from_secs(300)));
    assert_eq!(policy.concurrency, Some(8));

    let policy = <retried as Listener>::REGISTRATION.policy;
    assert_eq!(policy.attempts, Some(10));
    assert_eq!(policy.backoff, None);
    assert_eq!(policy.timeout, None);
    assert_eq!(policy.concurrency, None);

    let policy = <default_policy as Listener>::REGISTRATION.policy;
    assert_eq!(
        (
            policy.attempts,
            policy.backoff,
            policy.timeout,
            policy.concurrency
        ),
        (None, None, None, None)
    );
}
