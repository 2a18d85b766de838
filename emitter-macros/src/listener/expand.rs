//! Writing the output: the function unchanged, an adapter per event, the registration.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use super::parse::{ListenerArgs, Policy};
use super::validate::{Binding, Param};
use crate::tokens::inner_types;

pub(super) fn generate(function: &ItemFn, args: &ListenerArgs, params: &[Param]) -> TokenStream {
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
    !matches!(
        ty,
        Type::ImplTrait(_) | Type::Infer(_) | Type::Macro(_) | Type::Verbatim(_)
    ) && inner_types(ty).into_iter().all(names_a_type)
}
