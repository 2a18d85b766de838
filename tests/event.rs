//! `#[derive(Event)]`: ids, serde, registration.

use emitter::{Emitter, Event};
use emitter_tests::LogCapture;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Event, Debug, Clone, PartialEq)]
pub struct UserCreated {
    pub email: String,
    pub id: u64,
}

#[derive(Event, Debug, PartialEq)]
#[event(id = "billing.invoice_paid")]
pub struct InvoicePaid {
    #[serde(rename = "invoice_number")]
    pub invoice: u64,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Event, Debug, PartialEq)]
pub struct HTTPRequestSent {
    pub url: String,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Address {
    pub city: String,
}

/// Fields of the user's own types, which the derive checks for serde's traits.
#[derive(Event, Debug, PartialEq)]
pub struct UserMoved {
    pub email: String,
    pub to: Address,
    pub from: Option<Address>,
    pub note: Option<String>,
}

/// Fields are private: the derive lives in the same module, so serde can still reach them.
#[derive(Event, Debug, PartialEq)]
pub struct Opaque {
    secret: String,
}

#[test]
fn id_is_the_snake_case_type_name_unless_given() {
    assert_eq!(UserCreated::ID, "user_created");
    assert_eq!(InvoicePaid::ID, "billing.invoice_paid");
    assert_eq!(HTTPRequestSent::ID, "http_request_sent");
    assert_eq!(Opaque::ID, "opaque");
}

#[test]
fn events_round_trip_through_json() {
    let event = UserCreated {
        email: "jane@example.com".into(),
        id: 7,
    };
    let json = serde_json::to_string(&event).unwrap();
    assert_eq!(json, r#"{"email":"jane@example.com","id":7}"#);
    assert_eq!(serde_json::from_str::<UserCreated>(&json).unwrap(), event);

    let opaque = Opaque { secret: "s".into() };
    let json = serde_json::to_string(&opaque).unwrap();
    assert_eq!(serde_json::from_str::<Opaque>(&json).unwrap(), opaque);
}

#[test]
fn serde_field_attributes_apply() {
    let paid: InvoicePaid = serde_json::from_str(r#"{"invoice_number":12}"#).unwrap();
    assert_eq!(
        paid,
        InvoicePaid {
            invoice: 12,
            note: None
        }
    );
    assert_eq!(
        serde_json::to_string(&paid).unwrap(),
        r#"{"invoice_number":12,"note":null}"#
    );
    let error = serde_json::from_str::<InvoicePaid>(r#"{"invoice":12}"#).unwrap_err();
    assert!(error.to_string().contains("invoice_number"), "{error}");
}

#[test]
fn fields_of_the_users_types_round_trip_and_a_missing_option_is_none() {
    let moved = UserMoved {
        email: "jane@example.com".into(),
        to: Address {
            city: "Oslo".into(),
        },
        from: Some(Address {
            city: "Bergen".into(),
        }),
        note: None,
    };
    let json = serde_json::to_string(&moved).unwrap();
    assert_eq!(
        json,
        r#"{"email":"jane@example.com","to":{"city":"Oslo"},"from":{"city":"Bergen"},"note":null}"#
    );
    assert_eq!(serde_json::from_str::<UserMoved>(&json).unwrap(), moved);

    // A stored event from before the `Option` fields existed.
    let old: UserMoved =
        serde_json::from_str(r#"{"email":"jane@example.com","to":{"city":"Oslo"}}"#).unwrap();
    assert_eq!((old.from, old.note), (None, None));
    let error = serde_json::from_str::<UserMoved>(r#"{"email":"jane@example.com"}"#).unwrap_err();
    assert!(error.to_string().contains("missing field `to`"), "{error}");
}

#[test]
fn derived_events_are_known_to_the_table_without_listeners() {
    let emitter = Emitter::builder().listeners([]).build().unwrap();
    let mut ids: Vec<&str> = emitter.table().event_ids().collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "billing.invoice_paid",
            "http_request_sent",
            "opaque",
            "user_created",
            "user_moved"
        ]
    );
    assert!(emitter.table().is_empty());
}

/// This binary defines events and no listener at all: what a binary whose listener crate the
/// linker dropped looks like. Start warns, with the fix.
#[test]
fn start_warns_when_no_listener_is_registered_at_all() {
    let logs = LogCapture::default();
    let subscriber = tracing_subscriber::registry().with(logs.clone());
    let emitter =
        tracing::subscriber::with_default(subscriber, || Emitter::builder().build()).unwrap();
    assert!(emitter.table().is_empty());
    let warnings: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|line| line.level == Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].text.starts_with("no listener is registered"),
        "{warnings:?}"
    );
    assert!(
        warnings[0].text.contains("use that_crate as _;"),
        "{warnings:?}"
    );
}
