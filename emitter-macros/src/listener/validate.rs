//! Checking the function's signature and deciding how each parameter is bound.

use syn::{FnArg, GenericParam, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::event::combine;

/// How a parameter of the listener is bound.
pub(super) enum Binding {
    /// Visibly context: `EventMeta`, `Emitter` or `State<T>`, by value or by reference. `ty` is
    /// the type behind the reference.
    Context { ty: Type, by_ref: bool },
    /// Visibly the whole event: a type named like one of the listener's events.
    Event { ty: Type, by_ref: bool },
    /// Visibly a field: a type no context parameter can have (`&str`, `u64`, `Vec<T>`,
    /// `Option<T>`, ...) takes the event's field `name`.
    Field(syn::Ident),
    /// By name: the event's field `name` if the event has one (known when the adapter is
    /// compiled), context recognised by its type otherwise. `referent` is the type behind a
    /// reference, whose context is borrowed.
    Named {
        name: syn::Ident,
        referent: Option<Type>,
    },
}

pub(super) struct Param {
    pub(super) ty: Type,
    pub(super) binding: Binding,
}

pub(super) fn validate_signature(
    function: &ItemFn,
    events: &[syn::Path],
) -> syn::Result<Vec<Param>> {
    let sig = &function.sig;
    let mut errors: Option<syn::Error> = None;
    let mut fail = |error: syn::Error| combine(&mut errors, error);
    for param in &sig.generics.params {
        fail(match param {
            GenericParam::Lifetime(lifetime) => syn::Error::new_spanned(
                lifetime,
                format!(
                    "a listener cannot declare lifetimes: leave them out, as in `&str`, and the borrow lasts for the call; remove `{}`",
                    lifetime.lifetime
                ),
            ),
            GenericParam::Type(_) | GenericParam::Const(_) => syn::Error::new_spanned(
                param,
                "a listener cannot be generic: the emitter calls it with the event's concrete types; remove the generic parameter and name the type",
            ),
        });
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        fail(syn::Error::new_spanned(
            where_clause,
            "a listener cannot have a `where` clause: it is called with concrete types; remove the clause",
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
    if sig.asyncness.is_none() {
        if let ReturnType::Type(_, ty) = &sig.output {
            if returns_future(ty) {
                fail(syn::Error::new_spanned(
                    ty,
                    "a plain `fn` listener runs on the blocking pool and its result is not awaited: make it an `async fn` that returns the future's output",
                ));
            }
        }
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

/// `impl Future<...>`, or a type named like a future (`BoxFuture<...>`, `Pin<Box<dyn Future>>`).
fn returns_future(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(bounds) => bounds.bounds.iter().any(|bound| {
            matches!(bound, syn::TypeParamBound::Trait(bound)
                if bound.path.segments.last().is_some_and(|s| s.ident == "Future"))
        }),
        Type::Path(path) => path.path.segments.last().is_some_and(|last| {
            last.ident == "BoxFuture"
                || last.ident == "LocalBoxFuture"
                || (last.ident == "Pin" && quote::quote!(#last).to_string().contains("Future"))
        }),
        Type::Paren(paren) => returns_future(&paren.elem),
        Type::Group(group) => returns_future(&group.elem),
        _ => false,
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
        Some(segment) if segment.arguments.is_none() && is_context_name(&segment.ident) => {
            Some(Binding::Context {
                ty: inner.clone(),
                by_ref,
            })
        }
        Some(segment)
            if segment.ident == "State"
                && matches!(&segment.arguments, PathArguments::AngleBracketed(generic) if generic.args.len() == 1) =>
        {
            Some(Binding::Context {
                ty: inner.clone(),
                by_ref,
            })
        }
        Some(segment) if segment.arguments.is_none() && names_an_event(&segment.ident, events) => {
            if events.len() > 1 {
                return Err(syn::Error::new_spanned(
                    ty,
                    format!(
                        "this listener handles several events, so it cannot take the whole `{}`: take the fields it needs by name, and `meta: EventMeta` to learn which event fired",
                        segment.ident
                    ),
                ));
            }
            Some(Binding::Event {
                ty: inner.clone(),
                by_ref,
            })
        }
        _ => None,
    };
    let binding = match binding {
        Some(binding) => binding,
        None if is_field_type(inner) => Binding::Field(param_ident(pat)?),
        None => Binding::Named {
            name: param_ident(pat)?,
            referent: by_ref.then(|| inner.clone()),
        },
    };
    Ok(Param {
        ty: ty.clone(),
        binding,
    })
}

/// Whether a parameter of this type can only be a field: primitives, slices, arrays, tuples and
/// std's strings and collections are never context (an alias cannot name a primitive), so the
/// field is read directly and a field that does not exist is rustc's "no field" error, which
/// lists the event's fields.
fn is_field_type(ty: &Type) -> bool {
    const FIELD_TYPES: &[&str] = &[
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64", "String", "Vec", "VecDeque", "Option", "HashMap",
        "HashSet", "BTreeMap", "BTreeSet", "Box", "Cow",
    ];
    match ty {
        Type::Slice(_) | Type::Array(_) | Type::Tuple(_) => true,
        Type::Paren(paren) => is_field_type(&paren.elem),
        Type::Group(group) => is_field_type(&group.elem),
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| FIELD_TYPES.iter().any(|name| last.ident == name)),
        _ => false,
    }
}

fn is_context_name(ident: &syn::Ident) -> bool {
    ident == "EventMeta" || ident == "Emitter"
}

fn names_an_event(ident: &syn::Ident, events: &[syn::Path]) -> bool {
    events.iter().any(|event| {
        event
            .segments
            .last()
            .is_some_and(|last| last.ident == *ident)
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
