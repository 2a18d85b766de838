//! Helpers for reading the user's tokens.

use syn::{GenericArgument, PathArguments, Type};

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
