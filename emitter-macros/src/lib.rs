//! Procedural macros of the [`emitter`](https://docs.rs/emitter) crate.
//!
//! Depend on `emitter`, not on this crate: it re-exports these macros and the items their
//! expansions name. Each macro lives in its own module, split parse → validate → expand.

#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod duration;
mod emit;
mod event;
mod listener;
mod tokens;

use proc_macro::TokenStream;

/// Derives `emitter::Event`; see the `emitter` crate's documentation.
#[proc_macro_derive(Event, attributes(event, serde))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    event::expand(input).into()
}

/// Registers an `async fn` or `fn` as a listener; see the `emitter` crate's documentation.
#[proc_macro_attribute]
pub fn listener(args: TokenStream, item: TokenStream) -> TokenStream {
    listener::expand(args.into(), item.into()).into()
}

/// Builds an event with every field checked at compile time and emits it; see the `emitter`
/// crate's documentation.
#[proc_macro]
pub fn emit(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as emit::EmitInput);
    emit::expand(input).into()
}
