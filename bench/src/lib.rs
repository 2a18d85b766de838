//! The workloads of the emitter's benchmarks, shared by `bench_compare` and the criterion benches
//! so that every number measures the same events, listeners and baselines.
//!
//! - [`signup`]: W1 and W2, one event with an e-mail address and an id.
//! - [`ring`]: W3, sixteen event types with four listeners each.
//! - [`ping`]: W4, a listener that reports when it starts.
//! - [`baseline`]: what the emitter is compared with, a tokio channel and one worker task that
//!   calls the same listener functions directly.
//! - [`counter`]: what the listeners add to, and what the benchmarks check.
//! - [`profile`]: a store wrapper timing the durable engine's calls, for the throughput examples.

pub mod baseline;
pub mod counter;
pub mod ping;
pub mod profile;
pub mod ring;
pub mod signup;

/// `1 + 2 + ... + n`: what a counter holds after adding the ids `1..=n`.
pub fn sum_to(n: u64) -> u64 {
    n * (n + 1) / 2
}

/// `Ok` if a counter holds what was expected, else an error naming it and both values.
pub fn check(what: &str, got: u64, expected: u64) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, expected {expected}"))
    }
}

/// A current-thread tokio runtime with the time driver on, as an application would have.
pub fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Emits each event as an application keeping up with a busy emitter would: `emit`, and when
/// the emitter is full, `emit_async` with the event it handed back, which waits for room.
pub async fn emit_each<E: emitter::Event + Clone>(
    emitter: &emitter::Emitter,
    events: impl IntoIterator<Item = E>,
) -> Result<(), String> {
    for event in events {
        match emitter.emit(event) {
            Ok(_) => {}
            Err(emitter::EmitError::Full(rejected)) => {
                let event = rejected
                    .into_event::<E>()
                    .ok_or("the emitter handed back another event than it refused")?;
                emitter
                    .emit_async(event)
                    .await
                    .map_err(|error| format!("emit_async failed: {error}"))?;
            }
            Err(error) => return Err(format!("emit failed: {error}")),
        }
    }
    Ok(())
}
