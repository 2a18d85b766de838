//! `#[event(id = "...")]` sets the id; other attributes and derives may sit next to it.
use emitter::Event;

/// An account was closed.
#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "account.closed")]
pub struct AccountClosed {
    /// The account's number.
    pub account: u64,
}

#[derive(Debug, Event)]
#[event(id = "account.opened",)]
pub struct AccountOpened {
    pub account: u64,
}

fn main() {
    assert_eq!(AccountClosed::ID, "account.closed");
    assert_eq!(AccountOpened::ID, "account.opened");
    let closed = AccountClosed { account: 1 };
    assert_eq!(closed.clone(), closed);
}
