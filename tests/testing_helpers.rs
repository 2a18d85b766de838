//! `emitter::testing`: what users' tests get to capture emits and deliveries, and to wait without
//! sleeping.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use emitter::testing::Capture;
use emitter::{emit, listener, listeners, Emitter, Event, State};
use tokio::sync::watch;

#[derive(Event, Debug, Clone, PartialEq)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Event, Debug, Clone, PartialEq)]
pub struct UserDeleted {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn welcome(email: &str) -> Result<(), String> {
    if email.ends_with(".invalid") {
        return Err(format!("cannot mail {email}"));
    }
    Ok(())
}

#[listener(events = [UserDeleted])]
async fn farewell(email: &str, gate: State<watch::Receiver<bool>>) {
    let _ = email;
    let _ = gate.0.clone().wait_for(|open| *open).await;
}

async fn started(capture: &Capture, gate: watch::Receiver<bool>) -> Emitter {
    Emitter::builder()
        .listeners(listeners![welcome, farewell])
        .state(gate)
        .capture(capture)
        .start()
        .await
        .unwrap()
}

fn user(email: &str) -> UserCreated {
    UserCreated {
        email: email.to_owned(),
    }
}

#[tokio::test]
async fn capture_lists_emitted_events_by_type_in_emit_order() {
    let capture = Capture::new();
    let (_open, gate) = watch::channel(true);
    let emitter = started(&capture, gate).await;
    emit!(emitter, UserCreated, email = "a@example.com").unwrap();
    emit!(emitter, UserDeleted, email = "b@example.com").unwrap();
    emit!(emitter, UserCreated, email = "c@example.com").unwrap();
    emitter.wait_idle().await;
    assert_eq!(
        capture.emitted::<UserCreated>(),
        [user("a@example.com"), user("c@example.com")]
    );
    assert_eq!(
        capture.emitted_ids(),
        ["user_created", "user_deleted", "user_created"]
    );
    emitter.shutdown().await.unwrap();
}

#[tokio::test]
async fn assert_ran_with_accepts_what_a_listener_handled() {
    let capture = Capture::new();
    let (_open, gate) = watch::channel(true);
    let emitter = started(&capture, gate).await;
    emit!(emitter, UserCreated, email = "a@example.com").unwrap();
    emit!(emitter, UserCreated, email = "x@example.invalid").unwrap();
    emitter.wait_idle().await;
    capture.assert_ran_with::<welcome, _>(&user("a@example.com"));
    assert_eq!(
        capture.delivered_to::<welcome, UserCreated>(),
        [user("a@example.com")]
    );
    let failed: Vec<_> = capture
        .attempts()
        .into_iter()
        .filter_map(|attempt| attempt.error)
        .collect();
    assert_eq!(failed, ["returned an error: cannot mail x@example.invalid"]);
    emitter.shutdown().await.unwrap();
}

#[tokio::test]
#[should_panic(
    expected = "listener `testing_helpers::welcome` did not run with UserCreated { email: \"x@example.invalid\" }"
)]
async fn assert_ran_with_panics_for_a_failed_delivery() {
    let capture = Capture::new();
    let (_open, gate) = watch::channel(true);
    let emitter = started(&capture, gate).await;
    emit!(emitter, UserCreated, email = "x@example.invalid").unwrap();
    emitter.wait_idle().await;
    capture.assert_ran_with::<welcome, _>(&user("x@example.invalid"));
}

#[tokio::test(flavor = "current_thread")]
async fn wait_idle_returns_only_once_listeners_are_done() {
    let capture = Capture::new();
    let (open, gate) = watch::channel(false);
    let emitter = started(&capture, gate).await;
    emit!(emitter, UserDeleted, email = "b@example.com").unwrap();
    let idle = emitter.wait_idle();
    tokio::pin!(idle);
    // Let the delivery start and block at the gate, then check that `wait_idle` still waits.
    let mut yields = 0;
    while emitter.metrics().in_flight == 0 {
        assert!(yields < 10_000, "the delivery never started");
        tokio::task::yield_now().await;
        yields += 1;
    }
    let pending =
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut idle).as_mut().poll(cx).is_pending()))
            .await;
    assert!(pending, "wait_idle returned while a listener was blocked");
    open.send_replace(true);
    idle.await;
    assert_eq!(emitter.metrics().delivered, 1);
    emitter.shutdown().await.unwrap();
}
