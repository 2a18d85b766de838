//! `#[listener(events = [...])]`: keeps the function, adds one typed adapter per event and a
//! link-time registration.

use std::fmt::Display;
use std::str::FromStr;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, ExprLit, ExprUnary, FnArg, GenericArgument, ItemFn, Lit, LitStr, Pat, PathArguments,
    ReturnType, Token, Type, UnOp,
};

use crate::duration;
use crate::event::{combine, path_to_string, skip_value};

/// The attribute's arguments.
struct ListenerArgs {
    events: Vec<syn::Path>,
    name: Option<LitStr>,
    policy: Policy,
}

/// The delivery-policy options, validated; durations in milliseconds.
#[derive(Default)]
struct Policy {
    attempts: Option<u32>,
    backoff: Option<(u64, u64)>,
    timeout: Option<u64>,
    concurrency: Option<usize>,
}

/// An option of the attribute.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    Events,
    Name,
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
//                attempts = 3, backoff = "100ms..10s", timeout = "30s", concurrency = 1)]
// A duration is an integer and a unit, `ms`, `s`, `m` or `h` (see `crate::duration`).
fn parse_args(args: TokenStream) -> syn::Result<ListenerArgs> {
    let mut events: Option<EventList> = None;
    let mut name: Option<LitStr> = None;
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
                    None => format!(
                        "unknown `listener` option `{text}`: expected `events = [...]`, `name = \"...\"`, `attempts = 3`, `backoff = \"100ms..10s\"`, `timeout = \"30s\"` or `concurrency = 1`"
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
    match errors {
        Some(errors) => Err(errors),
        None => Ok(ListenerArgs {
            events,
            name,
            policy,
        }),
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
        let paths = Punctuated::<syn::Path, Token![,]>::parse_terminated(&content).map_err(|error| {
            syn::Error::new(
                error.span(),
                "`events` lists event types separated by commas, e.g. `events = [UserCreated, billing::InvoicePaid]`",
            )
        })?;
        Ok(EventList {
            span: bracket.span.join(),
            paths: paths.into_iter().collect(),
        })
    }
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

/// What a parameter of the listener receives.
enum Binding {
    /// The event field of the same name.
    Field(syn::Ident),
    /// The whole event, by reference or cloned.
    Event { by_ref: bool },
    /// `EventMeta` or `&EventMeta`.
    Meta { by_ref: bool },
    /// `Emitter` or `&Emitter`.
    Emitter { by_ref: bool },
    /// `State<T>` or `&State<T>`.
    State { inner: Box<Type>, by_ref: bool },
}

struct Param {
    ty: Type,
    binding: Binding,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => return with_error(item.clone(), not_a_function(item)),
    };
    match expand_fn(args, &function) {
        Ok(expanded) => expanded,
        Err(error) => with_error(item, error),
    }
}

/// The user's item unchanged plus the errors, so one mistake does not cascade into many.
fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
}

fn not_a_function(item: TokenStream) -> syn::Error {
    use syn::Item;
    let (span, what) = match syn::parse2::<Item>(item) {
        Ok(Item::Struct(item)) => (item.struct_token.span, "a struct"),
        Ok(Item::Enum(item)) => (item.enum_token.span, "an enum"),
        Ok(Item::Union(item)) => (item.union_token.span, "a union"),
        Ok(Item::Trait(item)) => (item.trait_token.span, "a trait"),
        Ok(Item::Impl(item)) => (item.impl_token.span, "an impl block"),
        Ok(Item::Mod(item)) => (item.mod_token.span, "a module"),
        Ok(Item::Const(item)) => (item.const_token.span, "a const"),
        Ok(Item::Static(item)) => (item.static_token.span, "a static"),
        Ok(Item::Type(item)) => (item.type_token.span, "a type alias"),
        Ok(Item::Use(item)) => (item.use_token.span, "a `use`"),
        _ => (Span::call_site(), "this item"),
    };
    syn::Error::new(
        span,
        format!("`#[listener]` goes on a function, not on {what}: write `async fn name(field: &Type, ...)` or a plain `fn`"),
    )
}

fn expand_fn(args: TokenStream, function: &ItemFn) -> syn::Result<TokenStream> {
    let mut errors: Option<syn::Error> = None;
    let args = parse_args(args).unwrap_or_else(|error| {
        combine(&mut errors, error);
        ListenerArgs {
            events: Vec::new(),
            name: None,
            policy: Policy::default(),
        }
    });
    let params = validate_signature(function, &args.events).unwrap_or_else(|error| {
        combine(&mut errors, error);
        Vec::new()
    });
    if let Some(errors) = errors {
        return Err(errors);
    }
    Ok(generate(function, &args, &params))
}

fn validate_signature(function: &ItemFn, events: &[syn::Path]) -> syn::Result<Vec<Param>> {
    let sig = &function.sig;
    let mut errors: Option<syn::Error> = None;
    let mut fail = |error: syn::Error| combine(&mut errors, error);
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(syn::Error::new_spanned(
            &sig.generics,
            "a listener cannot be generic: the emitter calls it with concrete types; remove the generic parameters (elided lifetimes such as `&str` are fine)",
        ));
    }
    if let Some(token) = &sig.constness {
        fail(syn::Error::new_spanned(
            token,
            "a listener cannot be a `const fn`: remove `const`",
        ));
    }
    if let Some(token) = &sig.unsafety {
        fail(syn::Error::new_spanned(token, "a listener cannot be an `unsafe fn`: the emitter cannot uphold its safety contract; make it safe"));
    }
    if let Some(abi) = &sig.abi {
        fail(syn::Error::new_spanned(
            abi,
            "a listener cannot have an `extern` ABI: remove it",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        fail(syn::Error::new_spanned(
            variadic,
            "a listener cannot be variadic",
        ));
    }
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => fail(syn::Error::new_spanned(
                receiver.self_token,
                "a listener cannot take `self`: make it a free function, and take what it needs as `State<T>` (shared state given to the emitter builder)",
            )),
            FnArg::Typed(typed) => match classify(&typed.pat, &typed.ty, events) {
                Ok(param) => params.push(param),
                Err(error) => fail(error),
            },
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(params),
    }
}

fn classify(pat: &Pat, ty: &Type, events: &[syn::Path]) -> syn::Result<Param> {
    let (by_ref, inner) = match ty {
        Type::Reference(reference) => {
            if let Some(mutability) = &reference.mutability {
                return Err(syn::Error::new_spanned(
                    mutability,
                    "a listener parameter cannot be `&mut`: every listener of an event shares it; take `&T` or an owned clone",
                ));
            }
            (true, &*reference.elem)
        }
        other => (false, other),
    };
    if let Type::ImplTrait(_) = inner {
        return Err(syn::Error::new_spanned(
            ty,
            "a listener parameter cannot be `impl Trait`: the listener would be generic; name a concrete type",
        ));
    }
    let last = match inner {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    };
    let binding = match last {
        Some(segment) if segment.ident == "EventMeta" => Some(Binding::Meta { by_ref }),
        Some(segment) if segment.ident == "Emitter" => Some(Binding::Emitter { by_ref }),
        Some(segment) if segment.ident == "State" => match &segment.arguments {
            PathArguments::AngleBracketed(generic) if generic.args.len() == 1 => {
                match &generic.args[0] {
                    GenericArgument::Type(inner) => Some(Binding::State {
                        inner: Box::new(inner.clone()),
                        by_ref,
                    }),
                    _ => None,
                }
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    ty,
                    "`State` takes the type of the shared state: write `State<MyState>`",
                ))
            }
        },
        Some(segment) if segment.arguments.is_none() => {
            let whole_event = events.iter().any(|event| {
                event
                    .segments
                    .last()
                    .is_some_and(|last| last.ident == segment.ident)
            });
            if whole_event && events.len() > 1 {
                return Err(syn::Error::new_spanned(
                    ty,
                    format!(
                        "this listener handles several events, so it cannot take the whole `{}`: take the fields it needs by name, and `meta: EventMeta` to learn which event fired",
                        segment.ident
                    ),
                ));
            }
            whole_event.then_some(Binding::Event { by_ref })
        }
        _ => None,
    };
    let binding = match binding {
        Some(binding) => binding,
        None => Binding::Field(param_ident(pat)?),
    };
    Ok(Param {
        ty: ty.clone(),
        binding,
    })
}

fn param_ident(pat: &Pat) -> syn::Result<syn::Ident> {
    match pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => Ok(ident.ident.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            "a listener parameter that takes an event field must be a plain name: the name says which field to bind, e.g. `email: &str`",
        )),
    }
}

fn generate(function: &ItemFn, args: &ListenerArgs, params: &[Param]) -> TokenStream {
    let private = quote!(::emitter::__private);
    let sig = &function.sig;
    let fn_name = &sig.ident;
    let vis = &function.vis;
    let fn_name_str = fn_name.to_string();
    let name = match &args.name {
        Some(name) => quote!(#name),
        None => quote!(::core::concat!(::core::module_path!(), "::", #fn_name_str)),
    };
    // Spanned on the return type, so that an unsupported one is reported there.
    let into_result = match &sig.output {
        ReturnType::Type(_, ty) if names_a_type(ty) => quote_spanned! {ty.span()=>
            <#ty as ::emitter::__private::IntoListenerResult>::into_listener_result(__emitter_output)
        },
        ReturnType::Type(_, ty) => quote_spanned! {ty.span()=>
            ::emitter::__private::IntoListenerResult::into_listener_result(__emitter_output)
        },
        ReturnType::Default => quote! {
            #private::IntoListenerResult::into_listener_result(__emitter_output)
        },
    };

    let states: Vec<&Type> = params
        .iter()
        .filter_map(|param| match &param.binding {
            Binding::State { inner, .. } => Some(&**inner),
            _ => None,
        })
        .collect();
    let state_keys = states.iter().map(|inner| {
        quote_spanned! {inner.span()=>
            #private::StateKey {
                type_id: #private::TypeId::of::<#inner>,
                type_name: #private::type_name::<#inner>,
            }
        }
    });
    let state_keys = quote!(&[#(#state_keys),*]);

    let field_traits =
        params
            .iter()
            .enumerate()
            .filter_map(|(position, param)| match &param.binding {
                Binding::Field(field) => Some(field_trait(position, field)),
                _ => None,
            });

    let handlers = args.events.iter().map(|event| {
        let mut bindings = Vec::new();
        let mut call_args = Vec::new();
        for (position, param) in params.iter().enumerate() {
            let local = format_ident!("__emitter_arg{}", position);
            let ty = &param.ty;
            let (value, by_ref) = match &param.binding {
                Binding::Field(field) => {
                    // Both the field access and the conversion are spanned on the parameter's
                    // name: "no field `x` on type `E`" and a type mismatch point at it.
                    let place = format_ident!("__emitter_field{}", position);
                    let field_trait = field_trait_name(position, field);
                    let bind = quote_spanned! {field.span()=>
                        <_ as #field_trait<'_, #event, _>>::__emitter_bind(#place)
                    };
                    bindings.push(quote! {
                        let #place = &(*__emitter_event).#field;
                        let #local: #ty = #bind;
                    });
                    call_args.push(quote!(#local));
                    continue;
                }
                Binding::Event { by_ref: true } => {
                    call_args.push(quote!(__emitter_event));
                    continue;
                }
                Binding::Event { by_ref: false } => {
                    let clone = quote_spanned! {ty.span()=>
                        <#ty as __EmitterOwnedEvent>::__emitter_clone(__emitter_event)
                    };
                    bindings.push(quote!(let #local: #ty = #clone;));
                    call_args.push(quote!(#local));
                    continue;
                }
                Binding::Meta { by_ref } => (
                    quote!(#private::Clone::clone(__emitter_delivery.meta())),
                    *by_ref,
                ),
                Binding::Emitter { by_ref } => (
                    quote!(#private::Clone::clone(__emitter_delivery.emitter())),
                    *by_ref,
                ),
                // `&State<T>` borrows the emitter's copy; `State<T>` clones it.
                Binding::State {
                    inner,
                    by_ref: true,
                } => (quote!(__emitter_delivery.state_ref::<#inner>()?), false),
                Binding::State {
                    inner,
                    by_ref: false,
                } => (quote!(__emitter_delivery.state::<#inner>()?), false),
            };
            bindings.push(quote!(let #local = #value;));
            call_args.push(if by_ref {
                quote!(&#local)
            } else {
                quote!(#local)
            });
        }
        let body = if sig.asyncness.is_some() {
            // Spanned so that a future that is not `Send` is reported on the function's name.
            let call = quote_spanned! {fn_name.span()=>
                ::emitter::__private::assert_send(#fn_name(#(#call_args),*))
            };
            quote! {
                #private::start(__emitter_slot, __emitter_cx, async move {
                    let __emitter_event: &#event = __emitter_delivery.event::<#event>()?;
                    #(#bindings)*
                    let __emitter_output = #call.await;
                    #into_result
                })
            }
        } else {
            quote! {
                #private::start(__emitter_slot, __emitter_cx, #private::run_blocking(move || {
                    let __emitter_event: &#event = __emitter_delivery.event::<#event>()?;
                    #(#bindings)*
                    let __emitter_output = #fn_name(#(#call_args),*);
                    #into_result
                }))
            }
        };
        let event_id = quote_spanned!(event.span()=> <#event as #private::Event>::ID);
        // The adapter is a closure in the registration's initializer, not a separate function:
        // type-checked in one body, an event type that is not an `Event` is reported once.
        quote! {
            #private::Handler {
                event_type: #private::TypeId::of::<#event>,
                event_type_name: #private::type_name::<#event>,
                event_id: #event_id,
                call: |__emitter_delivery: #private::Delivery,
                       __emitter_slot: &mut #private::AdapterSlot,
                       __emitter_cx: &mut #private::Context<'_>|
                       -> #private::Started { #body },
                states: #state_keys,
            }
        }
    });

    let line = quote_spanned!(fn_name.span()=> ::core::line!());
    let policy = policy_overrides(&args.policy);
    let owned_event = params
        .iter()
        .find(|param| matches!(param.binding, Binding::Event { by_ref: false }))
        .map(|param| owned_event_trait(&param.ty));

    quote! {
        #function

        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #fn_name {}

        const _: () = {
            #(#field_traits)*
            #owned_event

            #[allow(clippy::needless_borrow, clippy::clone_on_copy, clippy::let_unit_value)]
            static __EMITTER_LISTENER: #private::ListenerRegistration = #private::ListenerRegistration {
                name: #name,
                file: ::core::file!(),
                line: #line,
                handlers: &[#(#handlers),*],
                policy: #policy,
            };

            impl #private::Listener for #fn_name {
                const REGISTRATION: &'static #private::ListenerRegistration = &__EMITTER_LISTENER;
            }

            #private::inventory::submit! {
                #private::ListenerRef(&__EMITTER_LISTENER)
            }
        };
    }
}

/// The `PolicyOverrides` of the registration: `NONE` unless an option is given.
fn policy_overrides(policy: &Policy) -> TokenStream {
    let private = quote!(::emitter::__private);
    let Policy {
        attempts,
        backoff,
        timeout,
        concurrency,
    } = policy;
    if attempts.is_none() && backoff.is_none() && timeout.is_none() && concurrency.is_none() {
        return quote!(#private::PolicyOverrides::NONE);
    }
    let duration = |millis: u64| quote!(#private::Duration::from_millis(#millis));
    let option = |value: Option<TokenStream>| match value {
        Some(value) => quote!(#private::Some(#value)),
        None => quote!(#private::None),
    };
    let attempts = option(attempts.map(|n| quote!(#n)));
    let backoff = option(backoff.map(|(initial, max)| {
        let (initial, max) = (duration(initial), duration(max));
        quote!((#initial, #max))
    }));
    let timeout = option(timeout.map(duration));
    let concurrency = option(concurrency.map(|n| quote!(#n)));
    quote! {
        #private::PolicyOverrides {
            attempts: #attempts,
            backoff: #backoff,
            timeout: #timeout,
            concurrency: #concurrency,
        }
    }
}

/// A trait that only forwards to `FieldArg`, generated per field parameter so that a type
/// mismatch is reported with the parameter's name and the event that has the field: rustc reports
/// the message of the outer trait when both have the same `Self`.
fn field_trait(position: usize, field: &syn::Ident) -> TokenStream {
    let name = field_trait_name(position, field);
    let message = format!("listener parameter `{field}: {{Self}}` cannot take field `{field}` of `{{E}}`, which is a `{{F}}`");
    let label = format!("`{field}` is a `{{F}}` in `{{E}}`");
    let note = "take the field as `&{F}` (borrowed) or `{F}` (cloned); a `String` can also be taken as `&str`, a `Vec<T>` as `&[T]`, an `Option<T>` as `Option<&T>`";
    quote_spanned! {field.span()=>
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #[allow(non_camel_case_types)]
        trait #name<'a, E, F: ?::core::marker::Sized>: ::core::marker::Sized {
            fn __emitter_bind(field: &'a F) -> Self;
        }

        impl<'a, E, F, T> #name<'a, E, F> for T
        where
            F: ?::core::marker::Sized,
            T: ::emitter::__private::FieldArg<'a, F>,
        {
            fn __emitter_bind(field: &'a F) -> Self {
                <T as ::emitter::__private::FieldArg<'a, F>>::from_field(field)
            }
        }
    }
}

fn field_trait_name(position: usize, field: &syn::Ident) -> syn::Ident {
    format_ident!("__emitter_field_{}", position, span = field.span())
}

/// `Clone`, with a message that offers the borrow as the other fix.
fn owned_event_trait(ty: &Type) -> TokenStream {
    quote_spanned! {ty.span()=>
        #[diagnostic::on_unimplemented(
            message = "the listener takes the whole `{Self}` by value, so `{Self}` must be `Clone`",
            label = "`{Self}` is not `Clone`",
            note = "take it by reference (`&{Self}`), or add `#[derive(Clone)]` to `{Self}`"
        )]
        trait __EmitterOwnedEvent: ::core::marker::Sized {
            fn __emitter_clone(event: &Self) -> Self;
        }

        impl<T: ::emitter::__private::Clone> __EmitterOwnedEvent for T {
            fn __emitter_clone(event: &Self) -> Self {
                ::emitter::__private::Clone::clone(event)
            }
        }
    }
}

/// Whether a return type can be written as `<Type as Trait>`: not if it holds `impl Trait` or `_`.
fn names_a_type(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) | Type::Infer(_) | Type::Macro(_) | Type::Verbatim(_) => false,
        Type::Path(path) => path
            .path
            .segments
            .iter()
            .all(|segment| match &segment.arguments {
                PathArguments::AngleBracketed(generic) => {
                    generic.args.iter().all(|arg| match arg {
                        GenericArgument::Type(ty) => names_a_type(ty),
                        _ => true,
                    })
                }
                PathArguments::Parenthesized(_) | PathArguments::None => true,
            }),
        Type::Reference(reference) => names_a_type(&reference.elem),
        Type::Paren(paren) => names_a_type(&paren.elem),
        Type::Group(group) => names_a_type(&group.elem),
        Type::Tuple(tuple) => tuple.elems.iter().all(names_a_type),
        Type::Array(array) => names_a_type(&array.elem),
        Type::Slice(slice) => names_a_type(&slice.elem),
        _ => true,
    }
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
