//! Shutdown racing with emits from several threads that never stop on their own: shutdown still
//! returns (emits from outside listeners are refused once it begins), every emit that returned
//! `Ok` was delivered by then, and every other one was refused with `ShutDown`. Fifty rounds,
//! since a race shows itself only sometimes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use emitter::{listener, listeners, Capacity, EmitError, Emitter, Event, State};

#[derive(Event)]
pub struct Tick {
    pub n: u64,
}

#[listener(events = [Tick])]
async fn count(n: u64, delivered: State<Arc<AtomicU64>>) {
    let _ = n;
    delivered.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn every_accepted_emit_is_delivered_when_shutdown_races_with_emitters() {
    for round in 0..50 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let delivered = Arc::new(AtomicU64::new(0));
        let emitter = runtime
            .block_on(
                Emitter::builder()
                    .listeners(listeners![count])
                    .state(Arc::clone(&delivered))
                    .capacity(Capacity::Unbounded)
                    .start(),
            )
            .unwrap();
        let producers: Vec<_> = (0..3)
            .map(|_| {
                let emitter = emitter.clone();
                std::thread::spawn(move || {
                    let mut accepted = 0u64;
                    for n in 0.. {
                        match emitter.emit(Tick { n }) {
                            Ok(_) => accepted += 1,
                            Err(EmitError::ShutDown) => return accepted,
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        // Let the producers get going, then shut down under them.
        while delivered.load(Ordering::Relaxed) < 1_000 {
            std::thread::yield_now();
        }
        // A watchdog, not a timing check: were producers able to keep shutdown draining, the
        // report would come back incomplete here instead of the test hanging.
        let report = runtime
            .block_on(emitter.shutdown_timeout(Duration::from_secs(60)))
            .unwrap();
        assert!(report.is_complete(), "round {round}: {report}");
        let at_shutdown = delivered.load(Ordering::Relaxed);
        let accepted: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
        assert_eq!(
            at_shutdown, accepted,
            "round {round}: {accepted} emits were accepted, {at_shutdown} delivered by shutdown"
        );
        assert_eq!(emitter.metrics().pending_events, 0);
    }
}
