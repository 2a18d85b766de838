//! Field values: shorthand fields, number literals typed by the field (`u64`, negative `i32`,
//! `f64`), `&str` into `String`, values that convert with `Into`, trailing commas.
use emitter::{emit, EmitError, Emitter, Event};

#[derive(Event)]
pub struct OrderPlaced {
    pub id: u64,
    pub delta: i32,
    pub total: f64,
    pub customer: String,
    pub note: String,
    pub lines: Vec<String>,
    pub coupon: Option<String>,
    pub weight: u64,
}

fn place(emitter: &Emitter) -> Result<(), EmitError> {
    let lines = vec!["tea".to_owned()];
    let note = String::from("leave at the door");
    let weight: u32 = 250;
    emit!(
        emitter,
        OrderPlaced,
        id = 18_446_744_073_709_551_615,
        delta = -3,
        total = 12.5,
        customer = "jane@example.com",
        note,
        lines,
        coupon = None,
        weight = weight,
    )?;
    Ok(())
}

fn main() {
    let emitter = Emitter::builder().build().unwrap();
    assert!(matches!(place(&emitter), Err(EmitError::NotStarted)));
}
