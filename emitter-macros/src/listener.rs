//! `#[listener(events = [...])]`: keeps the function, adds one typed adapter per event and a
//! link-time registration.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, LitStr, Pat, PathArguments, ReturnType, Token, Type};

use crate::event::{combine, path_to_string};

/// The attribute's arguments.
struct ListenerArgs {
    events: Vec<syn::Path>,
    name: Option<LitStr>,
}

// Accepted syntax (keys in any order, each at most once; `events` required):
//     #[listener(events = [EventA, path::to::EventB], name = "stable.name")]
fn parse_args(args: TokenStream) -> syn::Result<ListenerArgs> {
    let mut events: Option<(Span, Vec<syn::Path>)> = None;
    let mut name: Option<LitStr> = None;
    let mut errors: Option<syn::Error> = None;
    let parser = syn::meta::parser(|meta| {
        let key = path_to_string(&meta.path);
        let duplicate = match key.as_str() {
            "events" => events.is_some(),
            "name" => name.is_some(),
            _ => {
                return Err(meta.error(format!(
                    "unknown `listener` option `{key}`: expected `events = [...]` or `name = \"...\"`"
                )))
            }
        };
        if duplicate {
            return Err(meta.error(format!("`{key}` is given twice: keep one")));
        }
        let value = meta.value()?;
        if key == "events" {
            let list: EventList = value.parse()?;
            events = Some((list.span, list.paths));
        } else {
            let lit: LitStr = value.parse()?;
            if lit.value().trim().is_empty() {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(&lit, "the listener name must not be empty: write `name = \"mailer.welcome\"`, or leave `name` out to use the function's path"),
                );
            }
            name = Some(lit);
        }
        Ok(())
    });
    if let Err(error) = parser.parse2(args) {
        combine(&mut errors, error);
    }
    let events = match events {
        Some((span, paths)) => {
            if paths.is_empty() {
                combine(
                    &mut errors,
                    syn::Error::new(span, "`events` is empty: list the events this listener handles, e.g. `events = [UserCreated]`"),
                );
            }
            for (i, path) in paths.iter().enumerate() {
                let text = path_to_string(path);
                if paths[..i].iter().any(|earlier| path_to_string(earlier) == text) {
                    combine(
                        &mut errors,
                        syn::Error::new_spanned(path, format!("`{text}` is listed twice in `events`: remove one")),
                    );
                }
            }
            paths
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
        None => Ok(ListenerArgs { events, name }),
    }
}

/// `[A, b::C]`
struct EventList {
    span: Span,
    paths: Vec<syn::Path>,
}

impl Parse for EventList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        let bracket = syn::bracketed!(content in input);
        let paths = Punctuated::<syn::Path, Token![,]>::parse_terminated(&content)?;
        Ok(EventList {
            span: bracket.span.join(),
            paths: paths.into_iter().collect(),
        })
    }
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
        Err(_) => {
            let error = syn::Error::new(
                first_token_span(&item),
                "`#[listener]` goes on a function: `async fn name(field: &Type, ...)` or a plain `fn`",
            );
            return with_error(item, error);
        }
    };
    match expand_fn(args, &function) {
        Ok(expanded) => expanded,
        Err(error) => with_error(function.into_token_stream(), error),
    }
}

/// The user's item unchanged plus the errors, so one mistake does not cascade into many.
fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
}

fn first_token_span(item: &TokenStream) -> Span {
    item.clone()
        .into_iter()
        .find(|token| !matches!(token, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |token| token.span())
}

fn expand_fn(args: TokenStream, function: &ItemFn) -> syn::Result<TokenStream> {
    let mut errors: Option<syn::Error> = None;
    let args = parse_args(args).unwrap_or_else(|error| {
        combine(&mut errors, error);
        ListenerArgs {
            events: Vec::new(),
            name: None,
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
        fail(syn::Error::new_spanned(token, "a listener cannot be a `const fn`: remove `const`"));
    }
    if let Some(token) = &sig.unsafety {
        fail(syn::Error::new_spanned(token, "a listener cannot be an `unsafe fn`: the emitter cannot uphold its safety contract; make it safe"));
    }
    if let Some(abi) = &sig.abi {
        fail(syn::Error::new_spanned(abi, "a listener cannot have an `extern` ABI: remove it"));
    }
    if let Some(variadic) = &sig.variadic {
        fail(syn::Error::new_spanned(variadic, "a listener cannot be variadic"));
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
            PathArguments::AngleBracketed(generic) if generic.args.len() == 1 => match &generic.args[0] {
                GenericArgument::Type(inner) => Some(Binding::State {
                    inner: Box::new(inner.clone()),
                    by_ref,
                }),
                _ => None,
            },
            _ => {
                return Err(syn::Error::new_spanned(
                    ty,
                    "`State` takes the type of the shared state: write `State<MyState>`",
                ))
            }
        },
        Some(segment) if segment.arguments.is_none() => {
            let whole_event = events
                .iter()
                .any(|event| event.segments.last().is_some_and(|last| last.ident == segment.ident));
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
    let is_async = sig.asyncness.is_some();
    let output_span = match &sig.output {
        ReturnType::Default => fn_name.span(),
        ReturnType::Type(_, ty) => ty.span(),
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

    let mut adapters = Vec::new();
    let mut handlers = Vec::new();
    for (index, event) in args.events.iter().enumerate() {
        let adapter = format_ident!("__emitter_adapter_{}", index);
        let mut bindings = Vec::new();
        let mut call_args = Vec::new();
        for (position, param) in params.iter().enumerate() {
            let local = format_ident!("__emitter_arg{}", position);
            let ty = &param.ty;
            let (value, by_ref) = match &param.binding {
                Binding::Field(field) => {
                    let from_field = quote_spanned!(ty.span()=> <#ty as #private::FieldArg<_>>::from_field);
                    bindings.push(quote!(let #local: #ty = #from_field(&__emitter_event.#field);));
                    call_args.push(quote!(#local));
                    continue;
                }
                Binding::Event { by_ref } => (quote!(#private::Clone::clone(__emitter_event)), *by_ref),
                Binding::Meta { by_ref } => (quote!(#private::Clone::clone(__emitter_delivery.meta())), *by_ref),
                Binding::Emitter { by_ref } => (quote!(#private::Clone::clone(__emitter_delivery.emitter())), *by_ref),
                Binding::State { inner, by_ref } => (quote!(__emitter_delivery.state::<#inner>()?), *by_ref),
            };
            if by_ref && matches!(param.binding, Binding::Event { .. }) {
                call_args.push(quote!(__emitter_event));
                continue;
            }
            bindings.push(quote!(let #local = #value;));
            call_args.push(if by_ref { quote!(&#local) } else { quote!(#local) });
        }
        let into_result = quote_spanned!(output_span=> #private::IntoListenerResult::into_listener_result);
        let body = if is_async {
            let assert_send = quote_spanned!(fn_name.span()=> #private::assert_send);
            quote! {
                #private::Box::pin(async move {
                    let __emitter_event: &#event = __emitter_delivery.event::<#event>()?;
                    #(#bindings)*
                    #into_result(#assert_send(#fn_name(#(#call_args),*)).await)
                })
            }
        } else {
            quote! {
                #private::Box::pin(#private::run_blocking(move || {
                    let __emitter_event: &#event = __emitter_delivery.event::<#event>()?;
                    #(#bindings)*
                    #into_result(#fn_name(#(#call_args),*))
                }))
            }
        };
        adapters.push(quote! {
            #[allow(clippy::needless_borrow, clippy::clone_on_copy, clippy::let_unit_value)]
            fn #adapter(__emitter_delivery: #private::Delivery) -> #private::BoxFuture {
                #body
            }
        });
        let event_id = quote_spanned!(event.span()=> <#event as #private::Event>::ID);
        handlers.push(quote! {
            #private::Handler {
                event_type: #private::TypeId::of::<#event>,
                event_type_name: #private::type_name::<#event>,
                event_id: #event_id,
                call: #adapter,
                states: #state_keys,
            }
        });
    }

    let line = quote_spanned!(fn_name.span()=> ::core::line!());
    quote! {
        #function

        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #fn_name {}

        const _: () = {
            #(#adapters)*

            static __EMITTER_LISTENER: #private::ListenerRegistration = #private::ListenerRegistration {
                name: #name,
                file: ::core::file!(),
                line: #line,
                handlers: &[#(#handlers),*],
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
