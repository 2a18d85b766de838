//! Tracing: a span per delivery with the event id, listener, emit id and attempt; the span current
//! at `emit` becomes its parent only when the emitter is asked to propagate it.

use emitter::{emit, listener, listeners, Emitter, Event};
use emitter_tests::{SeenSpan, SpanLog};
use tracing_subscriber::layer::SubscriberExt;

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

/// Emits one order inside a `request` span and returns the delivery spans seen.
async fn deliveries_of_one_emit(propagate: bool) -> (emitter::EmitId, Vec<SeenSpan>) {
    let spans = SpanLog::default();
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
    (emit_id, spans.named("emitter.delivery"))
}

#[tokio::test(flavor = "current_thread")]
async fn each_attempt_has_a_span_with_event_listener_emit_id_and_attempt() {
    let (emit_id, deliveries) = deliveries_of_one_emit(false).await;
    assert_eq!(deliveries.len(), 2, "one span per attempt: {deliveries:?}");
    for (span, attempt) in deliveries.iter().zip(["1", "2"]) {
        assert_eq!(span.field("event_id"), Some("order_placed"));
        assert_eq!(span.field("listener"), Some("spans::charge"));
        assert_eq!(span.field("emit_id"), Some(emit_id.to_string().as_str()));
        assert_eq!(span.field("attempt"), Some(attempt));
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
