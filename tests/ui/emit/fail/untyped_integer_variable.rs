//! A loop variable whose type nothing fixes defaults to `i32`, and `Into` cannot turn an `i32`
//! into the `u64` field: the message says to give the variable a type.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct Job {
    pub n: u64,
}

fn emit_jobs(emitter: &Emitter) {
    for n in 0..3 {
        let _ = emit!(emitter, Job, n);
    }
}

fn main() {}
