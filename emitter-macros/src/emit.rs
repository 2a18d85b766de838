//! `emit!(emitter, Event, field = value, ...)`: a struct literal the compiler checks, then `Emitter::emit`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Member, Token};

use crate::event::{combine, path_to_string};
use crate::tokens::type_name_for_id;

pub(crate) struct EmitInput {
    emitter: Expr,
    event: syn::Path,
    fields: Vec<FieldValue>,
}

struct FieldValue {
    name: syn::Ident,
    value: Option<Expr>,
}

const USAGE: &str = "write `emit!(emitter, EventType, field = value, ...)`";

// Accepted syntax:
//     emit!(EMITTER, EventType, field = value, other_field, ...)
// where `other_field` alone is shorthand for `other_field = other_field`.
impl Parse for EmitInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                format!("`emit!` needs an emitter and an event type: {USAGE}"),
            ));
        }
        let emitter: Expr = input.parse()?;
        if input.is_empty() {
            return Err(syn::Error::new_spanned(
                &emitter,
                format!("`emit!` needs an event type after the emitter: {USAGE}"),
            ));
        }
        if !input.peek(Token![,]) {
            return Err(input.error(format!("expected `,` after the emitter: {USAGE}")));
        }
        input.parse::<Token![,]>()?;
        if input.peek(syn::LitStr) {
            return Err(event_id_instead_of_type(&input.parse()?));
        }
        let event: syn::Path = input.parse().map_err(|error| {
            syn::Error::new(error.span(), format!("expected the event type: {USAGE}"))
        })?;
        if input.peek(Token![=]) {
            let name = path_to_string(&event);
            return Err(syn::Error::new_spanned(
                &event,
                format!("`{name}` looks like a field, but the event type comes first: write `emit!(emitter, EventType, {name} = ...)`"),
            ));
        }
        let mut fields = Vec::new();
        while !input.is_empty() {
            if input.peek(syn::token::Brace) {
                return Err(input.error(format!(
                    "`emit!` takes fields as `field = value` after a comma, not a struct literal: {USAGE}"
                )));
            }
            if !input.peek(Token![,]) {
                return Err(input.error(format!("expected `,` before the next field: {USAGE}")));
            }
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            fields.push(input.parse()?);
        }
        Ok(EmitInput {
            emitter,
            event,
            fields,
        })
    }
}

// Accepted syntax: `field = value`, or `field` alone for `field = field`.
impl Parse for FieldValue {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Token![..]) {
            let dots: Token![..] = input.parse()?;
            return Err(syn::Error::new_spanned(
                dots,
                "`emit!` has no struct-update syntax (`..base`): give every field as `field = value`, or build the event yourself and call `emitter.emit(event)`",
            ));
        }
        if input.peek(syn::Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name = input.parse()?;
            input.parse::<Token![=]>()?;
            return Ok(FieldValue {
                name,
                value: Some(input.parse()?),
            });
        }
        if input.peek(syn::Ident) && input.peek2(Token![:]) && !input.peek2(Token![::]) {
            let name: syn::Ident = input.parse()?;
            return Err(input.error(format!(
                "`emit!` takes `field = value`, not `field: value`: write `{name} = ...`"
            )));
        }
        let expr: Expr = input.parse().map_err(|error| {
            syn::Error::new(error.span(), format!("expected a field name: {USAGE}"))
        })?;
        match &expr {
            Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
                if let Some(name) = path.path.get_ident() {
                    return Ok(FieldValue {
                        name: name.clone(),
                        value: None,
                    });
                }
            }
            // `emit!(emitter, UserCreated, user.email)`: shorthand with a field access, as some
            // languages allow.
            Expr::Field(access) => {
                if let Member::Named(name) = &access.member {
                    let written = quote!(#expr).to_string().replace(' ', "");
                    return Err(syn::Error::new_spanned(
                        &expr,
                        format!(
                            "a field given alone must be a plain name: write `{name} = {written}`"
                        ),
                    ));
                }
            }
            _ => {}
        }
        Err(syn::Error::new_spanned(
            &expr,
            format!("expected `field = value`: {USAGE}"),
        ))
    }
}

/// `emit!(emitter, "user_created", ...)`: Litestar emits by event id.
fn event_id_instead_of_type(id: &syn::LitStr) -> syn::Error {
    let suggestion = type_name_for_id(&id.value()).unwrap_or_else(|| "EventType".to_owned());
    syn::Error::new_spanned(
        id,
        format!("`emit!` takes the event type, not its id: write `emit!(emitter, {suggestion}, ...)` with the type that derives `Event`"),
    )
}

fn validate(input: &EmitInput) -> syn::Result<()> {
    let mut errors = None;
    for (i, field) in input.fields.iter().enumerate() {
        if input.fields[..i]
            .iter()
            .any(|earlier| earlier.name == field.name)
        {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    &field.name,
                    format!("`{}` is given twice: keep one", field.name),
                ),
            );
        }
    }
    errors.map_or(Ok(()), Err)
}

pub(crate) fn expand(input: EmitInput) -> TokenStream {
    if let Err(errors) = validate(&input) {
        return errors.into_compile_error();
    }
    let EmitInput {
        emitter,
        event,
        fields,
    } = input;
    let inits = fields.iter().map(|field| {
        let name = &field.name;
        match &field.value {
            Some(value) if takes_type_from_field(value) => quote!(#name: #value),
            // A trait function with the value as argument: rustc blames the argument, so a
            // mismatch underlines the whole value, and the call is spanned on the field's name.
            Some(value) => {
                let convert =
                    quote_spanned!(name.span()=> ::emitter::__private::EmitValue::from_value);
                quote!(#name: #convert(#value))
            }
            None => {
                let convert = quote_spanned! {name.span()=>
                    <_ as ::emitter::__private::EmitValue<_>>::from_value(#name)
                };
                quote!(#name: #convert)
            }
        }
    });
    // Each check is spanned on what it checks (rustc reports a trait path on its `Self` type):
    // the emitter on the emitter expression, `Event` on the event type's name, which the struct
    // literal names once, so that a misspelt one is reported once. The emitter is evaluated
    // first, as written.
    let emitter_span = emitter
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let as_emitter = quote_spanned! {emitter_span=>
        <_ as ::emitter::__private::AsEmitter>::as_emitter
    };
    let event_span = event
        .segments
        .last()
        .map_or_else(Span::call_site, |last| last.ident.span());
    let emit = quote_spanned!(event_span=> <_ as ::emitter::__private::Event>::__emit);
    quote!(#emit(#as_emitter(&#emitter), #event { #(#inits),* }))
}

/// Whether a value gets its type from the field, as in a struct literal: a number literal,
/// `x.into()`, `iter.collect()`, `Default::default()`. Such a value is written into the literal
/// as it is: it has no type of its own that a conversion could start from, and rustc's own
/// message for it (`-1` for a `u64`, `42` for a `String`) is the clearest.
fn takes_type_from_field(expr: &Expr) -> bool {
    match expr {
        Expr::Lit(lit) => matches!(lit.lit, syn::Lit::Int(_) | syn::Lit::Float(_)),
        Expr::Unary(unary) => {
            matches!(unary.op, syn::UnOp::Neg(_))
                && matches!(&*unary.expr, Expr::Lit(_))
                && takes_type_from_field(&unary.expr)
        }
        Expr::MethodCall(call) => {
            call.turbofish.is_none()
                && call.args.is_empty()
                && (call.method == "into" || call.method == "collect")
        }
        Expr::Call(call) => {
            call.args.is_empty()
                && matches!(&*call.func, Expr::Path(path)
                    if path.qself.is_none()
                        && path.path.segments.len() >= 2
                        && path.path.segments.iter().rev().nth(1).is_some_and(|s| s.ident == "Default")
                        && path.path.segments.last().is_some_and(|s| s.ident == "default"))
        }
        Expr::Paren(paren) => takes_type_from_field(&paren.expr),
        Expr::Group(group) => takes_type_from_field(&group.expr),
        _ => false,
    }
}
