//! `emit!(emitter, Event, field = value, ...)`: a struct literal the compiler checks, then `Emitter::emit`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Token};

pub(crate) struct EmitInput {
    emitter: Expr,
    event: syn::Path,
    fields: Vec<FieldValue>,
}

struct FieldValue {
    name: syn::Ident,
    value: Option<Expr>,
}

// Accepted syntax:
//     emit!(EMITTER, EventType, field = value, other_field, ...)
// where `other_field` alone is shorthand for `other_field = other_field`.
impl Parse for EmitInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const USAGE: &str = "write `emit!(emitter, EventType, field = value, ...)`";
        if input.is_empty() {
            return Err(input.error(format!("`emit!` needs an emitter and an event: {USAGE}")));
        }
        let emitter: Expr = input.parse()?;
        if input.is_empty() {
            return Err(input.error(format!("`emit!` needs an event type after the emitter: {USAGE}")));
        }
        input.parse::<Token![,]>()?;
        let event: syn::Path = input.parse().map_err(|error| {
            syn::Error::new(error.span(), format!("expected the event type: {USAGE}"))
        })?;
        let mut fields = Vec::new();
        while !input.is_empty() {
            if input.peek(syn::token::Brace) {
                return Err(input.error(format!("`emit!` takes fields as `field = value` after a comma, not a struct literal: {USAGE}")));
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
                return Err(input.error(format!("expected `=` after the field name, not `:`: {USAGE}")));
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

pub(crate) fn expand(input: EmitInput) -> TokenStream {
    let private = quote!(::emitter::__private);
    let EmitInput {
        emitter,
        event,
        fields,
    } = input;
    let inits = fields.iter().map(|field| {
        let name = &field.name;
        match &field.value {
            // A number literal keeps its type from the field; through `Into` it would fall back
            // to `i32`/`f64` and fail for a `u64` field.
            Some(value) if is_number_literal(value) => quote!(#name: #value),
            Some(value) => {
                let into = quote_spanned!(value.span()=> #private::Into::into);
                quote!(#name: #into(#value))
            }
            None => {
                let into = quote_spanned!(name.span()=> #private::Into::into);
                quote!(#name: #into(#name))
            }
        }
    });
    let emit = quote_spanned!(emitter.span()=> #private::emit);
    quote! {
        #emit(&#emitter, #event { #(#inits),* })
    }
}

fn is_number_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Lit(lit) => matches!(lit.lit, syn::Lit::Int(_) | syn::Lit::Float(_)),
        Expr::Unary(unary) => matches!(unary.op, syn::UnOp::Neg(_)) && is_number_literal(&unary.expr),
        Expr::Group(group) => is_number_literal(&group.expr),
        Expr::Paren(paren) => is_number_literal(&paren.expr),
        _ => false,
    }
}
