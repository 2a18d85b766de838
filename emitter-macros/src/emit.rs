//! `emit!(emitter, Event, field = value, ...)`: a struct literal the compiler checks, then `Emitter::emit`.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Token};

use crate::event::{combine, path_to_string};

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
                proc_macro2::Span::call_site(),
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
            let name: syn::Ident = input.parse().map_err(|error| {
                syn::Error::new(error.span(), format!("expected a field name: {USAGE}"))
            })?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Some(input.parse()?)
            } else if input.peek(Token![:]) {
                return Err(input.error(format!(
                    "`emit!` takes `field = value`, not `field: value`: write `{name} = ...`"
                )));
            } else {
                None
            };
            fields.push(FieldValue { name, value });
        }
        Ok(EmitInput {
            emitter,
            event,
            fields,
        })
    }
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
            // A number literal keeps its type from the field; through a conversion it would fall
            // back to `i32`/`f64` and fail for a `u64` field.
            Some(value) if is_number_literal(value) => quote!(#name: #value),
            Some(value) => {
                let convert = quote_spanned! {value.span()=>
                    <_ as ::emitter::__private::FieldValue<_>>::from_value
                };
                quote!(#name: #convert(#value))
            }
            None => {
                let convert = quote_spanned! {name.span()=>
                    <_ as ::emitter::__private::FieldValue<_>>::from_value(#name)
                };
                quote!(#name: #convert)
            }
        }
    });
    // The emitter is spanned on the user's expression, so a wrong one is reported there. The
    // event argument is a block whose braces carry the event type's span: a type that is not an
    // event is reported on it. The call itself keeps the macro's span (`unused_must_use`).
    let emitter = quote_spanned!(emitter.span()=> &#emitter);
    let mut event_arg = Group::new(
        Delimiter::Brace,
        quote!(let __emitter_event = #event { #(#inits),* }; __emitter_event),
    );
    if let Some(last) = event.segments.last() {
        event_arg.set_span(last.ident.span());
    }
    quote!(::emitter::__private::emit(#emitter, #event_arg))
}

fn is_number_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Lit(lit) => matches!(lit.lit, syn::Lit::Int(_) | syn::Lit::Float(_)),
        Expr::Unary(unary) => {
            matches!(unary.op, syn::UnOp::Neg(_)) && is_number_literal(&unary.expr)
        }
        Expr::Group(group) => is_number_literal(&group.expr),
        Expr::Paren(paren) => is_number_literal(&paren.expr),
        _ => false,
    }
}
