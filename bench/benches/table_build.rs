//! What building an emitter for a listener set costs (`Emitter::builder().listeners(..).build()`,
//! which builds and checks the event table), beside building the same event -> listeners map by
//! hand: a `HashMap` from event type to listener names, sorted by name as the emitter sorts them.
//!
//! Built values are dropped outside the timed loop.

use std::any::TypeId;
use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use emitter::{listeners, Emitter};
use emitter_bench::counter::{Counter, Counters};
use emitter_bench::ring;
use emitter_bench::signup::{count_signup, fanout_a, fanout_b, fanout_c, Signup};

fn hand_table(pairs: &[(TypeId, &'static str)]) -> HashMap<TypeId, Vec<&'static str>> {
    let mut table: HashMap<TypeId, Vec<&'static str>> = HashMap::new();
    for &(event, listener) in pairs {
        table.entry(event).or_default().push(listener);
    }
    for listeners in table.values_mut() {
        listeners.sort_unstable();
    }
    table
}

fn table_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_build");

    let w1 = "W1_1_listener_1_event";
    group.bench_function(BenchmarkId::new("emitter_build", w1), |b| {
        b.iter_with_large_drop(|| {
            Emitter::builder()
                .listeners(listeners![count_signup])
                .state(Counter::default())
                .build()
                .expect("build")
        })
    });
    let pairs = [(TypeId::of::<Signup>(), "count_signup")];
    group.bench_function(BenchmarkId::new("baseline_hashmap", w1), |b| {
        b.iter_with_large_drop(|| hand_table(black_box(&pairs)))
    });

    let w2 = "W2_3_listeners_1_event";
    group.bench_function(BenchmarkId::new("emitter_build", w2), |b| {
        b.iter_with_large_drop(|| {
            Emitter::builder()
                .listeners(listeners![fanout_a, fanout_b, fanout_c])
                .state(Counters::new(3))
                .build()
                .expect("build")
        })
    });
    let pairs = [
        (TypeId::of::<Signup>(), "fanout_a"),
        (TypeId::of::<Signup>(), "fanout_b"),
        (TypeId::of::<Signup>(), "fanout_c"),
    ];
    group.bench_function(BenchmarkId::new("baseline_hashmap", w2), |b| {
        b.iter_with_large_drop(|| hand_table(black_box(&pairs)))
    });

    let w3 = "W3_16_listeners_16_events";
    group.bench_function(BenchmarkId::new("emitter_build", w3), |b| {
        b.iter_with_large_drop(|| {
            ring::with_listeners(Emitter::builder())
                .state(Counters::new(ring::EVENTS))
                .build()
                .expect("build")
        })
    });
    let pairs = ring::pairs();
    group.bench_function(BenchmarkId::new("baseline_hashmap", w3), |b| {
        b.iter_with_large_drop(|| hand_table(black_box(&pairs)))
    });

    group.finish();
}

criterion_group!(benches, table_build);
criterion_main!(benches);
