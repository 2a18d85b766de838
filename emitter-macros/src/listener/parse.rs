//! Parsing the attribute's arguments: `events`, `name`, `aliases` and the delivery-policy options.

use std::fmt::Display;
use std::str::FromStr;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ExprUnary, Lit, LitStr, Token, UnOp};

use crate::duration;
use crate::event::{combine, path_to_string, skip_value};
use crate::tokens::type_name_for_id;

/// The attribute's arguments.
pub(super) struct ListenerArgs {
    pub(super) events: Vec<syn::Path>,
    pub(super) name: Option<LitStr>,
    /// Old names whose stored deliveries the listener takes.
    pub(super) aliases: Vec<LitStr>,
    pub(super) policy: Policy,
}

/// The delivery-policy options, validated; durations in milliseconds.
#[derive(Default)]
pub(super) struct Policy {
    pub(super) attempts: Option<u32>,
    pub(super) backoff: Option<(u64, u64)>,
    pub(super) timeout: Option<u64>,
    pub(super) concurrency: Option<usize>,
}

/// An option of the attribute.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    Events,
    Name,
    Aliases,
    Attempts,
    Backoff,
    Timeout,
    Concurrency,
}

impl Key {
    fn from_name(name: &str) -> Option<Key> {
        Some(match name {
            "events" => Key::Events,
            "name" => Key::Name,
            "aliases" => Key::Aliases,
            "attempts" => Key::Attempts,
            "backoff" => Key::Backoff,
            "timeout" => Key::Timeout,
            "concurrency" => Key::Concurrency,
            _ => return None,
        })
    }
}

// Accepted syntax (keys in any order, each at most once; `events` required):
//     #[listener(events = [EventA, path::to::EventB], name = "stable.name",
//                aliases = ["old::path::name", "older.name"],
//                attempts = 3, backoff = "100ms..10s", timeout = "30s", concurrency = 1)]
// A duration is an integer and a unit, `ms`, `s`, `m` or `h` (see `crate::duration`).
pub(super) fn parse_args(args: TokenStream) -> syn::Result<ListenerArgs> {
    if let Ok(id) = syn::parse2::<LitStr>(args.clone().into_iter().take(1).collect()) {
        let suggestion = type_name_for_id(&id.value()).unwrap_or_else(|| "YourEvent".to_owned());
        return Err(syn::Error::new_spanned(
            id,
            format!("`#[listener]` takes event types, not event ids: write `#[listener(events = [{suggestion}])]` with the type that derives `Event`"),
        ));
    }
    let mut events: Option<EventList> = None;
    let mut name: Option<LitStr> = None;
    let mut aliases: Vec<LitStr> = Vec::new();
    let mut policy = Policy::default();
    let mut seen: Vec<Key> = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let parser = syn::meta::parser(|meta| {
        let text = path_to_string(&meta.path);
        let key = match Key::from_name(&text) {
            Some(key) if !seen.contains(&key) => key,
            known => {
                let message = match known {
                    Some(_) => format!("`{text}` is given twice: keep one"),
                    None if text == "event" => {
                        "unknown `listener` option `event`: the option is `events`, a list: write `events = [...]`".to_owned()
                    }
                    None if looks_like_a_type(&meta.path) => format!(
                        "`{text}` looks like an event type: list it in `events`, as in `#[listener(events = [{text}])]`"
                    ),
                    None => format!(
                        "unknown `listener` option `{text}`: expected `events = [...]`, `name = \"...\"`, `aliases = [\"...\"]`, `attempts = 3`, `backoff = \"100ms..10s\"`, `timeout = \"30s\"` or `concurrency = 1`"
                    ),
                };
                combine(&mut errors, meta.error(message));
                return skip_value(&meta);
            }
        };
        seen.push(key);
        let value = meta.value()?;
        let checked = match key {
            Key::Events => {
                events = Some(value.parse()?);
                Ok(())
            }
            Key::Name => {
                let lit: LitStr = value.parse().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        "`name` takes a string literal: write `name = \"mailer.welcome\"`",
                    )
                })?;
                let checked = if lit.value().trim().is_empty() {
                    Err(syn::Error::new_spanned(&lit, "the listener name must not be empty: write `name = \"mailer.welcome\"`, or leave `name` out to use the function's path"))
                } else {
                    Ok(())
                };
                name = Some(lit);
                checked
            }
            Key::Aliases => {
                let list: AliasList = value.parse()?;
                aliases = list.0;
                Ok(())
            }
            Key::Attempts => attempts(&value.parse()?).map(|n| policy.attempts = Some(n)),
            Key::Backoff => backoff(&value.parse()?).map(|range| policy.backoff = Some(range)),
            Key::Timeout => timeout(&value.parse()?).map(|millis| policy.timeout = Some(millis)),
            Key::Concurrency => concurrency(&value.parse()?).map(|n| policy.concurrency = Some(n)),
        };
        if let Err(error) = checked {
            combine(&mut errors, error);
        }
        Ok(())
    });
    if let Err(error) = parser.parse2(args) {
        combine(&mut errors, error);
    }
    let events = match events {
        Some(list) => {
            if list.paths.is_empty() {
                combine(
                    &mut errors,
                    syn::Error::new(list.span, "`events` is empty: list the events this listener handles, e.g. `events = [UserCreated]`"),
                );
            }
            for (i, path) in list.paths.iter().enumerate() {
                let text = path_to_string(path);
                if list.paths[..i]
                    .iter()
                    .any(|earlier| path_to_string(earlier) == text)
                {
                    combine(
                        &mut errors,
                        syn::Error::new_spanned(
                            path,
                            format!("`{text}` is listed twice in `events`: remove one"),
                        ),
                    );
                }
            }
            list.paths
        }
        None => {
            if errors.is_none() {
                combine(
                    &mut errors,
                    syn::Error::new(Span::call_site(), "missing `events`: write `#[listener(events = [YourEvent])]` to say which events this listener handles"),
                );
            }
            Vec::new()
        }
    };
    check_aliases(&aliases, name.as_ref(), &mut errors);
    match errors {
        Some(errors) => Err(errors),
        None => Ok(ListenerArgs {
            events,
            name,
            aliases,
            policy,
        }),
    }
}

/// An alias must name something: not nothing, not the listener's own name, not another alias.
/// (An alias equal to the default name, `module::path::function`, is refused by a constant the
/// expansion adds: the module path is not known here.)
fn check_aliases(aliases: &[LitStr], name: Option<&LitStr>, errors: &mut Option<syn::Error>) {
    for (i, alias) in aliases.iter().enumerate() {
        let text = alias.value();
        let problem = if text.trim().is_empty() {
            Some("an alias must not be empty: write the listener's old name, e.g. `aliases = [\"shop::mail::send_welcome\"]`".to_owned())
        } else if name.is_some_and(|name| name.value() == text) {
            Some(format!("`{text}` is the listener's own name: an alias is an old name it had; remove it from `aliases`"))
        } else if aliases[..i].iter().any(|earlier| earlier.value() == text) {
            Some(format!("`{text}` is listed twice in `aliases`: remove one"))
        } else {
            None
        };
        if let Some(message) = problem {
            combine(errors, syn::Error::new_spanned(alias, message));
        }
    }
}

// Accepted syntax: `["old::path::name", "older.name"]`, string literals.
/// `["a", "b"]`
struct AliasList(Vec<LitStr>);

impl Parse for AliasList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let expected = "`aliases` takes a list of old listener names in square brackets: write `aliases = [\"shop::mail::send_welcome\"]`";
        if !input.peek(syn::token::Bracket) {
            return Err(input.error(expected));
        }
        let content;
        syn::bracketed!(content in input);
        let names = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)
            .map_err(|error| syn::Error::new(error.span(), expected))?;
        Ok(AliasList(names.into_iter().collect()))
    }
}

/// `[A, b::C]`
struct EventList {
    span: Span,
    paths: Vec<syn::Path>,
}

impl Parse for EventList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if !input.peek(syn::token::Bracket) {
            return Err(input.error(
                "`events` takes a list in square brackets: write `events = [UserCreated]`",
            ));
        }
        let content;
        let bracket = syn::bracketed!(content in input);
        let paths = Punctuated::<EventPath, Token![,]>::parse_terminated(&content)?;
        Ok(EventList {
            span: bracket.span.join(),
            paths: paths.into_iter().map(|path| path.0).collect(),
        })
    }
}

/// One entry of `events`: an event type.
struct EventPath(syn::Path);

impl Parse for EventPath {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            let id: LitStr = input.parse()?;
            let suggestion =
                type_name_for_id(&id.value()).unwrap_or_else(|| "YourEvent".to_owned());
            return Err(syn::Error::new_spanned(
                id,
                format!("`events` lists event types, not event ids: write `{suggestion}`, the type that derives `Event`"),
            ));
        }
        input.parse().map(EventPath).map_err(|error| {
            syn::Error::new(
                error.span(),
                "`events` lists event types separated by commas, e.g. `events = [UserCreated, billing::InvoicePaid]`",
            )
        })
    }
}

/// Whether an unknown key is written like a type (`UserCreated`, `events::UserCreated`).
fn looks_like_a_type(path: &syn::Path) -> bool {
    path.segments
        .last()
        .is_some_and(|last| last.ident.to_string().starts_with(char::is_uppercase))
}

/// `attempts = 3`
fn attempts(value: &Expr) -> syn::Result<u32> {
    positive_integer(
        "attempts",
        "3",
        u32::MAX,
        value,
        "`attempts = 1` means no retry",
    )
}

/// `concurrency = 1`
fn concurrency(value: &Expr) -> syn::Result<usize> {
    positive_integer(
        "concurrency",
        "4",
        usize::MAX,
        value,
        "`concurrency = 1` runs one delivery at a time; leave `concurrency` out for no limit",
    )
}

/// `timeout = "30s"`, in milliseconds.
fn timeout(value: &Expr) -> syn::Result<u64> {
    let lit = string_literal("timeout", "30s", value, |text| timeout_millis(text).is_ok())?;
    timeout_millis(&lit.value()).map_err(|message| syn::Error::new_spanned(lit, message))
}

/// `backoff = "100ms..10s"`, in milliseconds.
fn backoff(value: &Expr) -> syn::Result<(u64, u64)> {
    let lit = string_literal("backoff", "100ms..10s", value, |text| {
        backoff_millis(text).is_ok()
    })?;
    backoff_millis(&lit.value()).map_err(|message| syn::Error::new_spanned(lit, message))
}

fn timeout_millis(text: &str) -> Result<u64, String> {
    match duration::parse_millis(text) {
        Ok(0) => Err(format!(
            "the timeout `{}` must be longer than zero: leave `timeout` out for no timeout",
            text.trim()
        )),
        Ok(millis) => Ok(millis),
        Err(error) => Err(error.to_string()),
    }
}

fn backoff_millis(text: &str) -> Result<(u64, u64), String> {
    let Some((initial_text, max_text)) = text.split_once("..") else {
        let text = text.trim();
        return Err(match duration::parse_millis(text) {
            Ok(millis) if millis > 0 => format!(
                "`backoff` takes a range `\"INITIAL..MAX\"`, not one duration: write `backoff = \"{text}..{text}\"` for a wait that does not grow, or e.g. `backoff = \"100ms..10s\"` to double from 100ms up to 10s"
            ),
            _ => "`backoff` takes a range `\"INITIAL..MAX\"`, e.g. `backoff = \"100ms..10s\"`: the first retry waits 100ms, each next one twice as long, up to 10s".to_owned(),
        });
    };
    let (initial_text, max_text) = (initial_text.trim(), max_text.trim());
    let initial = duration::parse_millis(initial_text).map_err(|error| error.to_string())?;
    let max = duration::parse_millis(max_text).map_err(|error| error.to_string())?;
    if initial == 0 || max == 0 {
        let (which, text) = if initial == 0 {
            ("initial", initial_text)
        } else {
            ("maximum", max_text)
        };
        return Err(format!(
            "the {which} backoff `{text}` must be longer than zero: write e.g. `backoff = \"100ms..10s\"`"
        ));
    }
    if initial > max {
        return Err(format!(
            "the initial backoff `{initial_text}` is longer than the maximum `{max_text}`: write `backoff = \"{max_text}..{initial_text}\"`"
        ));
    }
    Ok((initial, max))
}

/// An integer literal from 1 to `max`; `one` says what the smallest value means.
fn positive_integer<T>(key: &str, example: &str, max: T, value: &Expr, one: &str) -> syn::Result<T>
where
    T: FromStr + Display,
    T::Err: Display,
{
    let lit = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit,
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            return Err(syn::Error::new_spanned(
                value,
                format!("`{key}` must be at least 1: {one}"),
            ))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().trim().parse::<u64>().is_ok() => {
            return Err(syn::Error::new_spanned(
                lit,
                format!(
                    "`{key}` takes an integer, not a string: write `{key} = {}` without quotes",
                    lit.value().trim()
                ),
            ))
        }
        _ => return Err(not_a_literal(key, "an integer literal", example, value)),
    };
    if !lit.suffix().is_empty() {
        return Err(syn::Error::new_spanned(
            lit,
            format!(
                "`{key}` takes a plain integer: write `{key} = {}` without the suffix `{}`",
                lit.base10_digits(),
                lit.suffix()
            ),
        ));
    }
    if lit.base10_digits() == "0" {
        return Err(syn::Error::new_spanned(
            lit,
            format!("`{key}` must be at least 1: {one}"),
        ));
    }
    lit.base10_parse::<T>().map_err(|_| {
        syn::Error::new_spanned(
            lit,
            format!("`{key}` is too large: at most `{key} = {max}`"),
        )
    })
}

/// A string literal; anything else is an error that suggests `"{example}"`, or the user's
/// tokens in quotes when `valid` accepts them (`timeout = 30s` → `timeout = "30s"`).
fn string_literal<'a>(
    key: &str,
    example: &str,
    value: &'a Expr,
    valid: impl Fn(&str) -> bool,
) -> syn::Result<&'a LitStr> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = value
    {
        return Ok(lit);
    }
    let written = quote!(#value).to_string().replace(' ', "");
    let suggestion = if valid(&written) {
        written.as_str()
    } else {
        example
    };
    let suggestion = format!("\"{suggestion}\"");
    Err(not_a_literal(key, "a string literal", &suggestion, value))
}

/// The error for a value that is not the literal `key` takes: `kind`, e.g. `key = example`.
fn not_a_literal(key: &str, kind: &str, example: &str, value: &Expr) -> syn::Error {
    let message = match value {
        // A common attempt: the macro runs before constants are evaluated.
        Expr::Path(path) => format!(
            "`{key}` takes {kind}, not a constant: the attribute cannot read the value of `{}`; write e.g. `{key} = {example}`",
            path_to_string(&path.path)
        ),
        _ => format!("`{key}` takes {kind}: write `{key} = {example}`"),
    };
    syn::Error::new_spanned(value, message)
}

#[cfg(test)]
mod tests {
    use super::{backoff_millis, timeout_millis};

    #[test]
    fn backoff_reads_a_range_of_durations() {
        assert_eq!(backoff_millis("100ms..10s"), Ok((100, 10_000)));
        assert_eq!(backoff_millis("1s .. 1s"), Ok((1_000, 1_000)));
    }

    #[test]
    fn backoff_rejects_swapped_zero_and_single_bounds() {
        assert_eq!(
            backoff_millis("10s..1s").unwrap_err(),
            "the initial backoff `10s` is longer than the maximum `1s`: write `backoff = \"1s..10s\"`"
        );
        assert!(backoff_millis("0ms..1s")
            .unwrap_err()
            .starts_with("the initial backoff `0ms` must be longer than zero"));
        assert!(backoff_millis("1s..0s")
            .unwrap_err()
            .starts_with("the maximum backoff `0s` must be longer than zero"));
        assert!(backoff_millis("100ms")
            .unwrap_err()
            .contains("write `backoff = \"100ms..100ms\"`"));
        assert!(backoff_millis("fast").unwrap_err().starts_with(
            "`backoff` takes a range `\"INITIAL..MAX\"`, e.g. `backoff = \"100ms..10s\"`"
        ));
        assert!(backoff_millis("100ms..10x")
            .unwrap_err()
            .starts_with("unknown unit `x` in `10x`"));
    }

    #[test]
    fn timeout_must_be_longer_than_zero() {
        assert_eq!(timeout_millis("30s"), Ok(30_000));
        assert!(timeout_millis("0ms")
            .unwrap_err()
            .starts_with("the timeout `0ms` must be longer than zero"));
    }
}
