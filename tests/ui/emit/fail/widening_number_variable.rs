//! `emit!` gives a `u32` variable to the `u64` field `weight`: as in a struct literal, the
//! conversion is written out, even one that cannot fail.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct OrderPlaced {
    pub weight: u64,
}

fn send(emitter: &Emitter, grams: u32) {
    let _ = emit!(emitter, OrderPlaced, weight = grams * 2);
}

fn main() {}
