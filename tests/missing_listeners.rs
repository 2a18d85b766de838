//! The linker drops the registrations of a crate the binary never uses (DESIGN §6); start makes
//! the consequence loud: known events without listeners are listed at start with the fix.

use emitter::{listener, Emitter, Event};
use emitter_tests::LogCapture;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Event)]
pub struct Heard {
    pub n: u32,
}

#[derive(Event)]
pub struct Unheard {
    pub n: u32,
}

#[listener(events = [Heard])]
async fn hears(n: u32) {
    let _ = n;
}

#[test]
fn start_lists_known_events_without_listeners_with_the_fix() {
    let logs = LogCapture::default();
    let subscriber = tracing_subscriber::registry().with(logs.clone());
    let emitter =
        tracing::subscriber::with_default(subscriber, || Emitter::builder().build()).unwrap();
    assert_eq!(
        emitter
            .table()
            .events_without_listeners()
            .collect::<Vec<_>>(),
        ["unheard"]
    );
    let lines = logs.lines();
    let line = lines
        .iter()
        .find(|line| line.text.contains("events without listeners"))
        .unwrap_or_else(|| panic!("nothing logged about events without listeners: {lines:?}"));
    assert_eq!(line.level, Level::INFO);
    assert!(line.text.contains(r#"events=["unheard"]"#), "{}", line.text);
    assert!(line.text.contains("use that_crate as _;"), "{}", line.text);
}
