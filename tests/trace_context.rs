//! Trace context across processes, with the `opentelemetry` feature: an event emitted inside a
//! traced request by one process (which only emits) and delivered by a worker in another
//! process continues the request's trace there: the worker's delivery span has the request's
//! trace id and the request's span as its parent.
//!
//! The test binary runs itself as the worker ([`WORKER`], a test that does nothing unless
//! [`DIR`] is set): the two processes share a SQLite file, and each has an OpenTelemetry tracer
//! of its own that exports to memory, as separate services would.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use emitter::durable::sqlite::SqliteStore;
use emitter::durable::{Durable, DurableConfig};
use emitter::{emit, listener, listeners, Emitter, Event};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Set in the worker's environment to the directory of the database and the worker's report.
const DIR: &str = "EMITTER_TRACE_CONTEXT_DIR";
/// The worker test's name, for `--exact`.
const WORKER: &str = "worker";

#[derive(Event, Debug, Clone)]
#[event(id = "trace_context.invoice_paid")]
pub struct InvoicePaid {
    pub invoice: u64,
}

#[listener(events = [InvoicePaid], name = "trace_context.send_receipt")]
async fn send_receipt(invoice: u64) {
    tracing::info!(invoice, "receipt sent");
}

/// The spans a tracer exported.
#[derive(Debug, Clone, Default)]
struct Exported(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Exported {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch);
        Ok(())
    }
}

/// A subscriber that sends spans to an OpenTelemetry tracer exporting to memory, and what it
/// exported.
fn traced() -> (
    impl tracing::Subscriber + Send + Sync,
    SdkTracerProvider,
    Exported,
) {
    let exported = Exported::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exported.clone())
        .build();
    let tracer = provider.tracer("emitter-tests");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    (subscriber, provider, exported)
}

fn store(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir.join("events.db")).expect("the store opens")
}

#[tokio::test(flavor = "current_thread")]
async fn a_worker_in_another_process_continues_the_emitting_trace() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (subscriber, provider, _exported) = traced();
    let _default = tracing::subscriber::set_default(subscriber);

    // The web process: emits inside the request's span, delivers nothing.
    let emitter = Emitter::builder()
        .listeners(listeners![send_receipt])
        .propagate_span(true)
        .backend(Durable::with_config(
            store(dir.path()),
            DurableConfig::default().deliver(false),
        ))
        .start()
        .await
        .expect("starts");
    let request = tracing::info_span!("request");
    let emitted = {
        let _entered = request.enter();
        emit!(emitter, InvoicePaid, invoice = 7).expect("accepted")
    };
    let context = request.context();
    let request_context = context.span().span_context().clone();
    assert!(request_context.is_valid());
    drop(request);
    emitter.shutdown().await.expect("stored and shut down");
    let _ = provider.force_flush();

    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", WORKER, "--nocapture", "--test-threads=1"])
        .env(DIR, dir.path())
        .output()
        .expect("the worker runs");
    assert!(
        output.status.success(),
        "the worker failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(dir.path().join("delivery.txt"))
        .expect("the worker reported its delivery span");
    assert_eq!(
        report.trim(),
        format!(
            "{emitted} {} {}",
            request_context.trace_id(),
            request_context.span_id()
        ),
        "the worker's delivery span continues the request's trace"
    );
}

/// The worker process: delivers what is stored, and reports its delivery span's emit id, trace
/// id and parent span id.
#[tokio::test(flavor = "current_thread")]
async fn worker() {
    let Some(dir) = std::env::var_os(DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    let (subscriber, provider, exported) = traced();
    let _default = tracing::subscriber::set_default(subscriber);
    let backend = Durable::new(store(dir));
    let emitter = Emitter::builder()
        .listeners(listeners![send_receipt])
        .backend(backend.clone())
        .start()
        .await
        .expect("starts");
    tokio::time::timeout(Duration::from_secs(60), backend.wait_settled())
        .await
        .expect("the stored event is delivered")
        .expect("the store answers");
    emitter.shutdown().await.expect("shuts down");
    let _ = provider.force_flush();
    let spans = exported.0.lock().unwrap_or_else(PoisonError::into_inner);
    let delivery = spans
        .iter()
        .find(|span| span.name == "emitter.delivery")
        .expect("a delivery span was exported");
    let emit_id = delivery
        .attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == "emit_id")
        .map(|attribute| attribute.value.to_string())
        .expect("the delivery span has the emit id");
    std::fs::write(
        dir.join("delivery.txt"),
        format!(
            "{emit_id} {} {}",
            delivery.span_context.trace_id(),
            delivery.parent_span_id
        ),
    )
    .expect("the report is written");
}
