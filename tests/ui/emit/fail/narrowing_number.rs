//! `emit!` gives a `u64` to the `u32` field `quantity`: a narrowing conversion can fail, so it is
//! written out.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct StockReserved {
    pub quantity: u32,
}

fn send(emitter: &Emitter, requested: u64) {
    let _ = emit!(emitter, StockReserved, quantity = requested);
}

fn main() {}
