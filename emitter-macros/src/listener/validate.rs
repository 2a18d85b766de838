//! Checking the function's signature and deciding what each parameter receives.

use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, Type};

use crate::event::combine;

/// What a parameter of the listener receives.
pub(super) enum Binding {
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
