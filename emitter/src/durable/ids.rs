//! Ids as stores write them down and read them back: emit ids, receipts, claimed listeners.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use super::Receipt;
use crate::emit_id::EmitId;

/// An emit id is written as its 128 bits in 32 hexadecimal digits (its `Display`); this reads
/// that back, and also the hyphenated UUID form (`8-4-4-4-12` digits) that databases with a
/// `uuid` type print.
///
/// ```
/// use emitter::EmitId;
///
/// let id = EmitId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
/// assert_eq!(id.to_string().parse::<EmitId>(), Ok(id));
/// assert_eq!("01234567-89ab-cdef-0011-223344556677".parse::<EmitId>(), Ok(id));
/// assert!("not an id".parse::<EmitId>().is_err());
/// ```
impl FromStr for EmitId {
    type Err = ParseEmitIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hyphenated = text.len() == 36
            && text
                .char_indices()
                .all(|(at, c)| (c == '-') == matches!(at, 8 | 13 | 18 | 23));
        let digits: String = if hyphenated {
            text.chars().filter(|c| *c != '-').collect()
        } else {
            text.to_owned()
        };
        if digits.len() != 32 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(ParseEmitIdError(text.to_owned()));
        }
        u128::from_str_radix(&digits, 16)
            .map(EmitId::from_u128)
            .map_err(|_| ParseEmitIdError(text.to_owned()))
    }
}

/// Text that is not an [`EmitId`]: neither 32 hexadecimal digits nor a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEmitIdError(String);

impl fmt::Display for ParseEmitIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an emit id (32 hexadecimal digits)",
            self.0.escape_debug()
        )
    }
}

impl std::error::Error for ParseEmitIdError {}

impl Receipt {
    /// A receipt for the delivery `id` under the claim `lease`, each written with `Display`:
    /// what a store hands out with each claimed delivery.
    pub fn new(id: impl fmt::Display, lease: impl fmt::Display) -> Self {
        Receipt {
            id: id.to_string(),
            lease: lease.to_string(),
        }
    }

    /// The id and the lease read back with `FromStr`, or `None` when either does not parse: a
    /// receipt this store did not issue, which refers to no delivery of it (acting on it does
    /// nothing).
    ///
    /// ```
    /// use emitter::durable::Receipt;
    ///
    /// let receipt = Receipt::new(42, 7);
    /// assert_eq!(receipt.parse::<u64, u64>(), Some((42, 7)));
    /// assert_eq!(Receipt::new("x", 7).parse::<u64, u64>(), None);
    /// ```
    pub fn parse<I: FromStr, L: FromStr>(&self) -> Option<(I, L)> {
        Some((self.id.parse().ok()?, self.lease.parse().ok()?))
    }
}

/// The listeners a claim is for, each once, or `None` when the claim can take nothing (no
/// listener, or a limit of 0): the prologue of every store's `claim`.
pub(crate) fn claimable(listeners: &[&'static str], limit: usize) -> Option<Vec<&'static str>> {
    let mut seen = HashSet::new();
    let unique: Vec<&'static str> = listeners
        .iter()
        .copied()
        .filter(|listener| seen.insert(*listener))
        .collect();
    (!unique.is_empty() && limit > 0).then_some(unique)
}
