//! Field values are checked as in a struct literal: literals and expressions take the field's
//! type (`6 * 7`, `None`, `vec![]`, a loop variable), as do `.into()`, `.collect()` and
//! `Default::default()`; a `String` field also takes a `&str`, `&String`, `Cow<str>` or
//! `Box<str>`. Shorthand fields and trailing commas work. The emitted events hold the values.
use std::borrow::Cow;

use emitter::testing::Capture;
use emitter::{emit, listener, listeners, Emitter, Event};

#[derive(Event, Debug, PartialEq)]
pub struct OrderPlaced {
    pub id: u64,
    pub delta: i32,
    pub total: f64,
    pub customer: String,
    pub note: String,
    pub lines: Vec<String>,
    pub coupon: Option<String>,
    pub weight: u64,
    pub gift: bool,
}

#[derive(Event, Debug, PartialEq)]
pub struct Labelled {
    pub from_str: String,
    pub from_string_ref: String,
    pub from_cow: String,
    pub from_box: String,
    pub from_into: String,
    pub from_collect: String,
    pub from_default: String,
}

#[derive(Event, Debug, PartialEq)]
pub struct Job {
    pub n: u64,
}

#[listener(events = [OrderPlaced, Labelled, Job])]
fn record() {}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let capture = Capture::new();
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        .capture(&capture)
        .start()
        .await?;

    let lines = vec!["tea".to_owned()];
    let note = String::from("leave at the door");
    let weight: u32 = 250;
    emit!(
        emitter,
        OrderPlaced,
        id = 18_446_744_073_709_551_615,
        delta = -3,
        total = 12.5,
        customer = "jane@example.com",
        note,
        lines,
        coupon = None,
        weight = u64::from(weight) * 2,
        gift = 6 * 7 > 40,
    )?;
    emit!(
        emitter,
        OrderPlaced,
        id = 6 * 7,
        delta = i32::MIN,
        total = f64::from(weight) / 4.0,
        customer = String::from("joe@example.com"),
        note = format!("{weight} g"),
        lines = vec![],
        coupon = Some("SAVE10".to_owned()),
        weight = weight.into(),
        gift = Default::default(),
    )?;

    let owned = String::from("owned");
    emit!(
        emitter,
        Labelled,
        from_str = "literal",
        from_string_ref = &owned,
        from_cow = Cow::Borrowed("cow"),
        from_box = Box::<str>::from("box"),
        from_into = "into".into(),
        from_collect = ['a', 'b'].iter().collect(),
        from_default = Default::default(),
    )?;

    for n in 0..3 {
        emit!(emitter, Job, n)?;
    }

    emitter.wait_idle().await;
    assert_eq!(
        capture.emitted::<OrderPlaced>(),
        [
            OrderPlaced {
                id: u64::MAX,
                delta: -3,
                total: 12.5,
                customer: "jane@example.com".to_owned(),
                note: "leave at the door".to_owned(),
                lines: vec!["tea".to_owned()],
                coupon: None,
                weight: 500,
                gift: true,
            },
            OrderPlaced {
                id: 42,
                delta: i32::MIN,
                total: 62.5,
                customer: "joe@example.com".to_owned(),
                note: "250 g".to_owned(),
                lines: vec![],
                coupon: Some("SAVE10".to_owned()),
                weight: 250,
                gift: false,
            },
        ]
    );
    assert_eq!(
        capture.emitted::<Labelled>(),
        [Labelled {
            from_str: "literal".to_owned(),
            from_string_ref: "owned".to_owned(),
            from_cow: "cow".to_owned(),
            from_box: "box".to_owned(),
            from_into: "into".to_owned(),
            from_collect: "ab".to_owned(),
            from_default: String::new(),
        }]
    );
    assert_eq!(capture.emitted::<Job>(), [Job { n: 0 }, Job { n: 1 }, Job { n: 2 }]);
    emitter.shutdown().await?;
    Ok(())
}
