//! Fields of any serializable type, private fields, crate-visible events and events with no
//! fields.
use std::collections::BTreeMap;

use emitter::Event;

#[derive(Event)]
pub struct OrderPlaced {
    pub id: u64,
    pub lines: Vec<(String, u32)>,
    pub totals: BTreeMap<String, f64>,
    pub coupon: Option<String>,
    pub delta: i32,
    pub paid: bool,
    note: String,
}

#[derive(Event)]
pub(crate) struct CacheCleared {}

impl OrderPlaced {
    fn note(&self) -> &str {
        &self.note
    }
}

fn main() {
    let order = OrderPlaced {
        id: 1,
        lines: vec![("tea".to_owned(), 2)],
        totals: BTreeMap::new(),
        coupon: None,
        delta: -1,
        paid: true,
        note: String::new(),
    };
    assert!(order.note().is_empty());
    let _ = (order.id, order.lines, order.totals, order.coupon, order.delta, order.paid);
    assert_eq!(CacheCleared::ID, "cache_cleared");
}
