//! Whether a listener's body can suspend. An `async fn` whose body has no `.await`, and no
//! macro that could expand to one, finishes at its first poll: its adapter runs it in place,
//! borrowing the event, with no future kept between deliveries.
//!
//! The test reads tokens, so it is conservative: an unknown macro may hide an `.await` (as
//! `tokio::select!` does), and so does anything that looks like one.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Macros that expand to plain code, never to an `.await`: std's formatting, assertion and
/// inspection macros, and the event macros of `tracing` and `log`.
const PLAIN_MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "cfg",
    "column",
    "concat",
    "dbg",
    "debug",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "env",
    "eprint",
    "eprintln",
    "error",
    "event",
    "file",
    "format",
    "format_args",
    "info",
    "line",
    "matches",
    "module_path",
    "option_env",
    "panic",
    "print",
    "println",
    "stringify",
    "todo",
    "trace",
    "unimplemented",
    "unreachable",
    "vec",
    "warn",
    "write",
    "writeln",
];

/// Keywords that a `!` and a group can follow without being a macro call: `if !(a && b)`.
const KEYWORDS: &[&str] = &["if", "in", "match", "return", "while", "break", "else"];

/// Whether `body` has no `.await` and calls no macro that could expand to one.
pub(super) fn never_suspends(body: TokenStream) -> bool {
    let tokens: Vec<TokenTree> = body.into_iter().collect();
    for (index, token) in tokens.iter().enumerate() {
        let previous = index.checked_sub(1).and_then(|before| tokens.get(before));
        match token {
            TokenTree::Ident(ident) if ident == "await" => {
                if matches!(previous, Some(TokenTree::Punct(dot)) if dot.as_char() == '.') {
                    return false;
                }
            }
            TokenTree::Punct(bang) if bang.as_char() == '!' => {
                let name = match previous {
                    Some(TokenTree::Ident(name)) => name.to_string(),
                    _ => continue,
                };
                let called = matches!(
                    tokens.get(index + 1),
                    Some(TokenTree::Group(group)) if group.delimiter() != Delimiter::None
                );
                if called
                    && !PLAIN_MACROS.contains(&name.as_str())
                    && !KEYWORDS.contains(&name.as_str())
                {
                    return false;
                }
            }
            TokenTree::Group(group) if !never_suspends(group.stream()) => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::never_suspends;
    use quote::quote;

    #[test]
    fn a_body_without_await_never_suspends() {
        assert!(never_suspends(quote!({
            let total = id + 1;
            if !(total > 3 && flag) {
                println!("{total}");
                tracing::info!(total, "counted");
            }
            let ok = !done;
            assert_ne!(total, 0);
        })));
    }

    #[test]
    fn an_await_anywhere_may_suspend() {
        assert!(!never_suspends(quote!({ mailer.send(email).await })));
        assert!(!never_suspends(quote!({
            if ready {
                let _ = (async { x.await }, 1);
            }
        })));
        assert!(!never_suspends(quote!({ println!("{}", fetch().await) })));
    }

    #[test]
    fn an_unknown_macro_may_suspend() {
        assert!(!never_suspends(quote!({
            tokio::select! { _ = a => {}, _ = b => {} }
        })));
        assert!(!never_suspends(quote!({ my_macro!(x) })));
    }
}
