//! `emit!()` is given nothing.
use emitter::emit;

fn main() {
    let _ = emit!();
}
