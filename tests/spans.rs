//! Tracing: a span per delivery with the event id, listener, emit id and attempt; the span current
//! at `emit` becomes its parent only when the emitter is asked to propagate it.

use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, Emitter, Event};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[derive(Event)]
pub struct OrderPlaced {
    pub order: u64,
}

#[listener(events = [OrderPlaced], attempts = 2, backoff = "1ms..1ms")]
async fn charge(order: u64, meta: emitter::EventMeta) -> Result<(), String> {
    tracing::info!(order, "charging");
    if meta.attempt() == 1 {
        return Err("card declined".to_owned());
    }
    Ok(())
}

/// A span as the test saw it: its name, its parent's name, and its fields.
#[derive(Debug, Clone, PartialEq)]
struct SeenSpan {
    name: &'static str,
    parent: Option<&'static str>,
    fields: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<SeenSpan>>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name());
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        self.0.lock().unwrap().push(SeenSpan {
            name: attrs.metadata().name(),
            parent,
            fields: fields.0,
        });
    }
}

/// Emits one order inside a `request` span and returns the delivery spans seen.
async fn deliveries_of_one_emit(propagate: bool) -> (emitter::EmitId, Vec<SeenSpan>) {
    let spans = Spans::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let emitter = Emitter::builder()
        .listeners(listeners![charge])
        .propagate_span(propagate)
        .start()
        .await
        .unwrap();
    let request = tracing::info_span!("request");
    let emit_id = request.in_scope(|| emit!(emitter, OrderPlaced, order = 42).unwrap());
    emitter.shutdown().await.unwrap();
    let deliveries = spans
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|span| span.name == "emitter.delivery")
        .cloned()
        .collect();
    (emit_id, deliveries)
}

fn field<'a>(span: &'a SeenSpan, name: &str) -> Option<&'a str> {
    span.fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test(flavor = "current_thread")]
async fn each_attempt_has_a_span_with_event_listener_emit_id_and_attempt() {
    let (emit_id, deliveries) = deliveries_of_one_emit(false).await;
    assert_eq!(deliveries.len(), 2, "one span per attempt: {deliveries:?}");
    for (span, attempt) in deliveries.iter().zip(["1", "2"]) {
        assert_eq!(field(span, "event_id"), Some("order_placed"));
        assert_eq!(field(span, "listener"), Some("spans::charge"));
        assert_eq!(field(span, "emit_id"), Some(emit_id.to_string().as_str()));
        assert_eq!(field(span, "attempt"), Some(attempt));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn delivery_spans_are_roots_by_default() {
    let (_, deliveries) = deliveries_of_one_emit(false).await;
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries.iter().all(|span| span.parent.is_none()),
        "{deliveries:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn delivery_spans_are_children_of_the_emit_span_when_propagation_is_on() {
    let (_, deliveries) = deliveries_of_one_emit(true).await;
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries.iter().all(|span| span.parent == Some("request")),
        "{deliveries:?}"
    );
}
