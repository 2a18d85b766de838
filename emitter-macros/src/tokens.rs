//! Helpers for writing output whose errors land on the user's tokens.

use proc_macro2::Span;
use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

/// The spans of the first and last tokens of `tokens`.
///
/// On stable Rust one `Span` cannot cover several tokens, but rustc spans a type or an expression
/// from its first token to its last: generated tokens that start with the first span and end with
/// the last one make an error on them underline the whole of the user's tokens.
pub(crate) fn first_last_spans(tokens: &impl ToTokens) -> (Span, Span) {
    let mut iter = tokens.to_token_stream().into_iter();
    let first = iter
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let last = iter.last().map_or(first, |token| token.span());
    (first, last)
}

/// The types directly inside `ty`: a reference's, array's or slice's element, a tuple's elements,
/// the type arguments of a path (`Vec<T>`, `Result<T, E>`).
pub(crate) fn inner_types(ty: &Type) -> Vec<&Type> {
    match ty {
        Type::Reference(reference) => vec![&*reference.elem],
        Type::Array(array) => vec![&*array.elem],
        Type::Slice(slice) => vec![&*slice.elem],
        Type::Paren(paren) => vec![&*paren.elem],
        Type::Group(group) => vec![&*group.elem],
        Type::Tuple(tuple) => tuple.elems.iter().collect(),
        Type::Path(path) => path
            .path
            .segments
            .iter()
            .flat_map(|segment| match &segment.arguments {
                PathArguments::AngleBracketed(generic) => generic.args.iter().collect(),
                PathArguments::Parenthesized(_) | PathArguments::None => Vec::new(),
            })
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The type name a Litestar-style string id suggests: `"user_created"` → `UserCreated`, if that
/// is an identifier.
pub(crate) fn type_name_for_id(id: &str) -> Option<String> {
    let name: String = id
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect();
    let starts_well = name.chars().next().is_some_and(char::is_alphabetic);
    (starts_well && syn::parse_str::<syn::Ident>(&name).is_ok()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::type_name_for_id;

    #[test]
    fn ids_suggest_type_names() {
        assert_eq!(
            type_name_for_id("user_created").as_deref(),
            Some("UserCreated")
        );
        assert_eq!(
            type_name_for_id("billing.invoice_paid").as_deref(),
            Some("BillingInvoicePaid")
        );
        assert_eq!(type_name_for_id("ping").as_deref(), Some("Ping"));
        assert_eq!(type_name_for_id("2fa_enabled"), None);
        assert_eq!(type_name_for_id(""), None);
    }
}
