//! The conformance suite on the in-memory backend: the cases that need no store (the others,
//! dead letters, undecodable payloads, size limits, crashes and competing workers, are about
//! stored deliveries).

#[macro_use]
mod conformance;

memory_cases!(emitter::SimpleEventEmitter::new());
