//! What calling a listener through the emitter costs, beside calling the function directly.
//!
//! The public API cannot call an adapter alone, so the emitter's side is one full round trip:
//! `emit`, then `wait_idle` until the listener has run. Beside it, the same listener function
//! called directly (the floor), and the round trip through the hand-written baseline: a channel
//! send to a worker task that calls the function and signals when done. Each iteration builds one
//! event, on every side. Current-thread runtime, so no thread hand-off blurs the numbers.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use emitter::{listeners, Capacity, Emitter, State};
use emitter_bench::baseline::Baseline;
use emitter_bench::counter::Counter;
use emitter_bench::current_thread_runtime;
use emitter_bench::signup::{count_signup, Signup};
use tokio::sync::Notify;

fn adapter_call(c: &mut Criterion) {
    let runtime = current_thread_runtime().expect("a tokio runtime");
    let counter = Counter::default();
    let emitter = runtime
        .block_on(
            Emitter::builder()
                .listeners(listeners![count_signup])
                .state(counter.clone())
                // Unbounded, like the baseline's channel.
                .capacity(Capacity::Unbounded)
                .start(),
        )
        .expect("the emitter starts");
    let done = Arc::new(Notify::new());
    let baseline = runtime.block_on(async {
        let counter = counter.clone();
        let done = Arc::clone(&done);
        Baseline::spawn(move |event: Signup| {
            let counter = counter.clone();
            let done = Arc::clone(&done);
            async move {
                count_signup(event.id, State(counter)).await;
                done.notify_one();
            }
        })
    });

    // What the counter must hold at the end: every side adds the ids it was given.
    let mut expected = 0u64;
    let mut ids = |iters: u64| expected += iters * iters.saturating_sub(1) / 2;

    let mut group = c.benchmark_group("adapter_call");
    group.bench_function("emitter_emit_then_wait_idle", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for id in 0..iters {
                    emitter.emit(Signup::new(id)).expect("emit");
                    emitter.wait_idle().await;
                }
                let elapsed = started.elapsed();
                ids(iters);
                elapsed
            })
        })
    });
    group.bench_function("baseline_direct_call", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for id in 0..iters {
                    let event = black_box(Signup::new(id));
                    count_signup(event.id, State(counter.clone())).await;
                }
                let elapsed = started.elapsed();
                ids(iters);
                elapsed
            })
        })
    });
    group.bench_function("baseline_channel_round_trip", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for id in 0..iters {
                    baseline.send(Signup::new(id)).expect("send");
                    done.notified().await;
                }
                let elapsed = started.elapsed();
                ids(iters);
                elapsed
            })
        })
    });
    group.finish();

    runtime.block_on(async {
        baseline.finish().await.expect("the baseline's worker ends");
        emitter.shutdown().await.expect("the emitter shuts down");
    });
    assert_eq!(
        counter.get(),
        expected,
        "a listener call was lost: the counter does not hold the sum of the ids given"
    );
}

criterion_group!(benches, adapter_call);
criterion_main!(benches);
