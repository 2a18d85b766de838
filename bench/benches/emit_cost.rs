//! What one `emit` costs, beside what one `UnboundedSender::send` of the same event costs.
//!
//! Both run on a current-thread runtime: the timed loop never yields, so no listener runs while it
//! is timed, and what is measured is the emitting side alone. The queued events are delivered
//! after the timer stops, before the next sample.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use emitter::{listeners, Capacity, Emitter};
use emitter_bench::current_thread_runtime;
use emitter_bench::signup::{ignore_signup, Signup};
use tokio::sync::mpsc;

fn events(count: u64) -> Vec<Signup> {
    (0..count).map(Signup::new).collect()
}

fn emit_cost(c: &mut Criterion) {
    let runtime = current_thread_runtime().expect("a tokio runtime");
    let emitter = runtime
        .block_on(
            Emitter::builder()
                .listeners(listeners![ignore_signup])
                // Unbounded like the channel beside it, and so that no sample fills it.
                .capacity(Capacity::Unbounded)
                .start(),
        )
        .expect("the emitter starts");
    let (sender, mut receiver) = mpsc::unbounded_channel::<Signup>();

    let mut emitted = 0;

    let mut group = c.benchmark_group("emit_cost");
    group.bench_function("emitter_emit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let events = events(iters);
                let started = Instant::now();
                for event in events {
                    black_box(emitter.emit(event).expect("emit"));
                }
                let elapsed = started.elapsed();
                emitter.wait_idle().await;
                emitted += iters;
                elapsed
            })
        })
    });
    group.bench_function("baseline_unbounded_send", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let events = events(iters);
                let started = Instant::now();
                for event in events {
                    sender.send(event).expect("send");
                }
                let elapsed = started.elapsed();
                drain(&mut receiver, iters).await;
                elapsed
            })
        })
    });
    group.finish();
    let delivered = emitter.metrics().delivered;
    assert_eq!(delivered, emitted, "every emitted event is delivered");
    runtime
        .block_on(emitter.shutdown())
        .expect("the emitter shuts down");
}

/// Hands `count` queued events to the listener, as the baseline's worker would.
async fn drain(receiver: &mut mpsc::UnboundedReceiver<Signup>, count: u64) {
    for _ in 0..count {
        let event = receiver.recv().await.expect("the sender is alive");
        ignore_signup(event.id).await;
    }
}

criterion_group!(benches, emit_cost);
criterion_main!(benches);
