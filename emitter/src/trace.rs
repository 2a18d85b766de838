//! Trace context: how the span current at `emit` becomes the parent of the deliveries' spans, in
//! this process (the span itself) and in others (W3C `traceparent`, stored with the event).
//!
//! With the cargo feature `opentelemetry`, the `traceparent` is the OpenTelemetry context of the
//! emitting span (through `tracing-opentelemetry`), and a worker in another process sets it as
//! the parent of its delivery spans, so that one trace shows the request and the side effects it
//! caused. Without it, the `traceparent` is made of the emit id (as the trace id) and the
//! emitting span's id: it travels with the event and is recorded on the delivery spans, for
//! logs to be joined on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::emit_id::EmitId;

/// The trace context of one emit, carried by its deliveries.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    /// The span current at emit, when the delivery runs in the emitting process.
    pub(crate) span: Option<tracing::Span>,
    /// The same context in W3C form, when the event came from a store.
    pub(crate) traceparent: Option<String>,
}

impl Trace {
    /// The context of an emit made now, or `None` when no span is current (or none is
    /// recorded), which spares the emit an allocation.
    pub(crate) fn current() -> Option<Box<Trace>> {
        let span = tracing::Span::current();
        (!span.is_disabled()).then(|| {
            Box::new(Trace {
                span: Some(span),
                traceparent: None,
            })
        })
    }

    /// The context in W3C `traceparent` form, to store with the event of `emit_id`.
    pub(crate) fn traceparent(&self, emit_id: EmitId) -> Option<String> {
        if let Some(traceparent) = &self.traceparent {
            return Some(traceparent.clone());
        }
        let span = self.span.as_ref()?;
        #[cfg(feature = "opentelemetry")]
        if let Some(traceparent) = otel::traceparent(span) {
            return Some(traceparent);
        }
        let id = span.id()?;
        Some(format!(
            "00-{:032x}-{:016x}-01",
            emit_id.as_u128(),
            id.into_u64()
        ))
    }

    /// The context to store with the event of `emit_id`, which has `deliveries` deliveries: the
    /// `traceparent`, and the emitting span held for this process's workers (see [`Live`]).
    pub(crate) fn to_store(&self, emit_id: EmitId, deliveries: usize) -> Option<String> {
        if let Some(span) = &self.span {
            Live::hold(emit_id, span, deliveries);
        }
        self.traceparent(emit_id)
    }

    /// The context of a stored event: the emitting span if it is still alive in this process,
    /// and the stored `traceparent`.
    pub(crate) fn restored(emit_id: EmitId, traceparent: Option<String>) -> Option<Box<Trace>> {
        let span = Live::get(emit_id);
        (span.is_some() || traceparent.is_some()).then(|| Box::new(Trace { span, traceparent }))
    }
}

/// The span of one attempt of `listener` at emit `emit_id`: a root, or the child of the emit's
/// span (in this process) or of its stored `traceparent` (with the `opentelemetry` feature).
pub(crate) fn delivery_span(
    trace: Option<&Trace>,
    event_id: &'static str,
    listener: &'static str,
    emit_id: EmitId,
    attempt: u32,
) -> tracing::Span {
    let parent = trace
        .and_then(|trace| trace.span.as_ref())
        .and_then(tracing::Span::id);
    let span = tracing::info_span!(
        parent: parent,
        "emitter.delivery",
        event_id,
        listener,
        emit_id = %emit_id,
        attempt,
        traceparent = tracing::field::Empty,
    );
    if let Some(traceparent) = trace.and_then(|trace| trace.traceparent.as_deref()) {
        span.record("traceparent", traceparent);
        #[cfg(feature = "opentelemetry")]
        if trace.is_some_and(|trace| trace.span.is_none()) {
            otel::set_parent(&span, traceparent);
        }
    }
    span
}

/// Emitting spans of emits stored by this process, so that its own workers can make them the
/// parents of the delivery spans: a span can only be a parent while it lives.
///
/// Bounded: a span is let go once every delivery of its emit ended here, after
/// [`Live::MAX_AGE`], or when [`Live::CAPACITY`] newer ones came (deliveries that other
/// processes run never end here). The emitting span stays open while it is held.
pub(crate) struct Live {
    spans: HashMap<EmitId, (tracing::Span, usize)>,
    order: VecDeque<(Instant, EmitId)>,
}

impl Live {
    const CAPACITY: usize = 4096;
    const MAX_AGE: Duration = Duration::from_secs(60);

    fn with<T>(f: impl FnOnce(&mut Live) -> T) -> T {
        static LIVE: OnceLock<Mutex<Live>> = OnceLock::new();
        let live = LIVE.get_or_init(|| {
            Mutex::new(Live {
                spans: HashMap::new(),
                order: VecDeque::new(),
            })
        });
        f(&mut live.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Holds `span`, the span of emit `emit_id`, for its `deliveries` deliveries.
    pub(crate) fn hold(emit_id: EmitId, span: &tracing::Span, deliveries: usize) {
        Self::with(|live| {
            let now = Instant::now();
            while let Some(&(since, oldest)) = live.order.front() {
                if live.order.len() < Self::CAPACITY && now.duration_since(since) < Self::MAX_AGE {
                    break;
                }
                live.order.pop_front();
                live.spans.remove(&oldest);
            }
            live.spans.insert(emit_id, (span.clone(), deliveries));
            live.order.push_back((now, emit_id));
        });
    }

    fn get(emit_id: EmitId) -> Option<tracing::Span> {
        Self::with(|live| live.spans.get(&emit_id).map(|(span, _)| span.clone()))
    }

    /// One delivery of emit `emit_id` ended here.
    pub(crate) fn delivered(emit_id: EmitId) {
        Self::with(|live| {
            if let Some((_, left)) = live.spans.get_mut(&emit_id) {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    live.spans.remove(&emit_id);
                }
            }
        });
    }
}

#[cfg(feature = "opentelemetry")]
mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// The OpenTelemetry context of `span` in W3C form, if it has a valid one.
    pub(super) fn traceparent(span: &tracing::Span) -> Option<String> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                span_context.trace_id(),
                span_context.span_id(),
                span_context.trace_flags().to_u8()
            )
        })
    }

    /// Makes the remote context `traceparent` the parent of `span`; ignores one that does not
    /// parse.
    pub(super) fn set_parent(span: &tracing::Span, traceparent: &str) {
        let mut parts = traceparent.split('-');
        let (Some("00"), Some(trace_id), Some(span_id), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return;
        };
        let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
            TraceId::from_hex(trace_id),
            SpanId::from_hex(span_id),
            u8::from_str_radix(flags, 16),
        ) else {
            return;
        };
        let remote = SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::new(flags),
            true,
            TraceState::default(),
        );
        if remote.is_valid() {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
    }
}
