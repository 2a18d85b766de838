//! The `durable` example: retried invoices print on attempt 2, the failing webhook becomes a dead
//! letter with its reason and is delivered once replayed, the reminder waits its delay, the
//! duplicate emit is dropped, and the store ends empty.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the tests call its functions"
)]
#[path = "../examples/durable.rs"]
pub mod example;

use emitter::durable::sqlite::SqliteStore;
use emitter::durable::Admin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_story() {
    let dir = tempfile::tempdir().unwrap();
    let summary = example::run(&dir.path().join("events.db")).await.unwrap();
    let lines = summary.lines;
    let count = |needle: &str| lines.iter().filter(|line| line.contains(needle)).count();

    for order in 1..=3 {
        assert_eq!(
            count(&format!("invoice #{order}: printer warming up (attempt 1)")),
            1,
            "{lines:#?}"
        );
        assert_eq!(
            count(&format!("invoice #{order}: printed (attempt 2)")),
            1,
            "{lines:#?}"
        );
    }
    assert_eq!(count("webhook for #1: acme notified"), 1);
    assert_eq!(
        count("webhook for #3: initech notified"),
        1,
        "the duplicate emit ran: {lines:#?}"
    );
    assert_eq!(
        count("webhook for #2: globex notified"),
        1,
        "the replay was not delivered"
    );

    assert_eq!(summary.dead.len(), 1, "{:?}", summary.dead);
    let (listener, reason) = &summary.dead[0];
    assert_eq!(listener, "integrations.webhook");
    assert!(
        reason.contains("globex's endpoint answered 503"),
        "{reason}"
    );
    assert!(reason.contains("attempt 2 of 2"), "{reason}");

    let reminder = lines
        .iter()
        .find(|line| line.starts_with("reminder for #1"))
        .expect("the reminder was sent");
    let waited: u64 = reminder
        .split("sent ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .expect("a delay in ms");
    assert!(
        waited >= 300,
        "the reminder came after {waited} ms, before its 300 ms delay"
    );
    assert_eq!(summary.unfinished, 0);

    // The example's emitter shut down: the console no longer counts its worker as running.
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let workers = store.workers().await.unwrap();
    assert!(
        workers.is_empty(),
        "a stopped worker still runs: {workers:?}"
    );
}
