//! Writing the output: the function unchanged, an adapter per event, the registration.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use super::parse::{ListenerArgs, Policy};
use super::suspend::never_suspends;
use super::validate::{Binding, Param};
use crate::event::path_to_string;
use crate::tokens::{first_last_spans, inner_types};

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
        ReturnType::Type(_, ty) if names_a_type(ty) => quote! {
            <#ty as ::emitter::__private::IntoListenerResult>::into_listener_result(__emitter_output)
        },
        ReturnType::Type(_, ty) => quote_spanned! {ty.span()=>
            ::emitter::__private::IntoListenerResult::into_listener_result(__emitter_output)
        },
        ReturnType::Default => quote! {
            #private::IntoListenerResult::into_listener_result(__emitter_output)
        },
    };

    let run = match sig.asyncness {
        Some(_) if never_suspends(function.block.to_token_stream()) => Run::Now,
        Some(_) => Run::Future,
        None => Run::Blocking,
    };
    let mut items = Vec::new();
    let handlers: Vec<TokenStream> = args
        .events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let adapter = Adapter::new(index, event, params);
            items.extend(adapter.items());
            adapter.handler(fn_name, run, &into_result)
        })
        .collect();
    let distinct_events = distinct_event_checks(&args.events);

    let line = quote_spanned!(fn_name.span()=> ::core::line!());
    let policy = policy_overrides(&args.policy);
    let aliases = &args.aliases;
    // Without `name`, the listener's name is known once the module path is: checked here, on
    // the alias, when the constant is evaluated.
    let alias_checks = args.aliases.iter().filter(|_| args.name.is_none()).map(|alias| {
        quote_spanned! {alias.span()=>
            const _: () = ::core::assert!(
                !#private::str_eq(#name, #alias),
                "an alias is the listener's own name (its module path and function name): an alias is an old name it had; remove it from `aliases`",
            );
        }
    });

    quote! {
        #function

        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #fn_name {}

        const _: () = {
            #(#distinct_events)*
            #(#items)*
            #(#alias_checks)*

            #[allow(clippy::needless_borrow, clippy::clone_on_copy, clippy::let_unit_value)]
            static __EMITTER_LISTENER: #private::ListenerRegistration = #private::ListenerRegistration {
                name: #name,
                file: ::core::file!(),
                line: #line,
                handlers: &[#(#handlers),*],
                policy: #policy,
                aliases: &[#(#aliases),*],
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

/// How a listener runs.
#[derive(Clone, Copy)]
enum Run {
    /// An `async fn` that never suspends: in place, at once.
    Now,
    /// An `async fn`: a future.
    Future,
    /// A plain `fn`: on tokio's blocking pool.
    Blocking,
}

/// The adapter of one (listener, event) pair: how it binds each parameter.
struct Adapter<'a> {
    index: usize,
    event: &'a syn::Path,
    params: &'a [Param],
}

impl<'a> Adapter<'a> {
    fn new(index: usize, event: &'a syn::Path, params: &'a [Param]) -> Self {
        Adapter {
            index,
            event,
            params,
        }
    }

    /// `<Event as Trait>::name`: a type that is not an event is reported on it, once.
    fn event_as(&self, tokens: TokenStream, name: &str) -> TokenStream {
        let event = self.event;
        let name = format_ident!("{}", name);
        quote!(<#event as #tokens>::#name)
    }

    fn field_const(&self, position: usize) -> syn::Ident {
        format_ident!("__EMITTER_FIELD_{}_{}", self.index, position)
    }

    fn stub(&self, position: usize) -> syn::Ident {
        format_ident!("__EmitterStub{}_{}", self.index, position)
    }

    /// Per parameter bound by name: whether the event has the field, and a stub that has it.
    fn items(&self) -> Vec<TokenStream> {
        let mut items = Vec::new();
        for (position, param) in self.params.iter().enumerate() {
            let Binding::Named { name, .. } = &param.binding else {
                continue;
            };
            let field = self.field_const(position);
            let stub = self.stub(position);
            let fields = self.event_as(quote!(::emitter::__private::Event), "FIELDS");
            let text = name.unraw().to_string();
            items.push(quote! {
                #[allow(non_upper_case_globals)]
                const #field: bool = ::emitter::__private::has_field(#fields, #text);
                #[allow(dead_code, non_camel_case_types)]
                struct #stub<T: ?::core::marker::Sized> {
                    #name: ::emitter::__private::Dead<T>,
                }
            });
        }
        items
    }

    /// The expression that binds the parameter at `position` (a `Result`); unless the
    /// parameter visibly needs none, the shared state it needs (an `Option<StateKey>`); and
    /// unless it visibly needs none, whether it takes something from the emitter's context (a
    /// `bool`).
    fn bind(&self, position: usize, param: &Param) -> Bound {
        let private = quote!(::emitter::__private);
        let event = self.event;
        // rustc reports an unmet `<T as Trait>` on `T`: each context type is the user's type, or
        // spans the user's type (see `Context::of`).
        let context = |context: Context, event_expr: TokenStream| {
            let Context { ty, by_ref } = context;
            let (trait_, get) = if by_ref {
                (
                    quote!(#private::FromDeliveryRef<#event>),
                    quote!(from_delivery_ref),
                )
            } else {
                (
                    quote!(#private::FromDelivery<#event>),
                    quote!(from_delivery),
                )
            };
            Bound {
                get: quote!(<#ty as #trait_>::#get(&__emitter_delivery, #event_expr)),
                state: Some(quote!(<#ty as #trait_>::STATE)),
                context: Some(quote!(<#ty as #trait_>::CONTEXT)),
                transaction: Some(quote!(<#ty as #trait_>::TRANSACTION)),
            }
        };
        match &param.binding {
            Binding::Context { ty, by_ref } => {
                let bound = context(Context::of(ty, *by_ref), quote!(__emitter_event));
                // `EventMeta`, `Emitter`, `State<T>`: no transaction.
                Bound {
                    state: bound.state.filter(|_| is_state(ty)),
                    transaction: None,
                    ..bound
                }
            }
            Binding::Event { ty, by_ref: true } => Bound {
                get: context(Context::of(ty, true), quote!(__emitter_event)).get,
                state: None,
                context: None,
                transaction: None,
            },
            Binding::Event { ty, by_ref: false } => Bound {
                get: quote!(#private::Result::Ok(<#ty as #private::OwnedEvent>::clone_event(__emitter_event))),
                state: None,
                context: None,
                transaction: None,
            },
            Binding::Field(name) => {
                // Both the field access and the conversion are spanned on the parameter's name:
                // "no field `x` on type `E`" and a type mismatch point at it.
                let place = quote_spanned!(name.span()=> &(*__emitter_event).#name);
                let from_field = quote_spanned! {name.span()=>
                    <_ as #private::FromField<'_, _, #event>>::from_field(#place)
                };
                Bound {
                    get: quote!(#private::Result::Ok(#from_field)),
                    state: None,
                    context: None,
                    transaction: None,
                }
            }
            Binding::Named { name, referent } => {
                // `target` is the parameter's type, or what its reference points to.
                let target = referent.as_ref().unwrap_or(&param.ty);
                let field = self.field_const(position);
                let stub = self.stub(position);
                let pick = quote! {
                    #private::Select<#field> as #private::Pick<#event, #stub<#target>, #target>
                };
                let context_type = Context::picked(target, &pick, referent.is_some());
                let unwrap = if referent.is_some() {
                    quote!(<#pick>::context_ref)
                } else {
                    quote!(<#pick>::context)
                };
                let Bound {
                    get,
                    state,
                    context,
                    transaction,
                } = context(context_type, quote!(__emitter_context));
                // Spanned on the parameter's name: a field whose type does not fit is reported
                // there.
                let from_field = quote_spanned! {name.span()=>
                    <_ as #private::FromField<'_, _, #event>>::from_field
                };
                let bind = quote! {
                    <#pick>::bind(
                        __emitter_event,
                        |__emitter_target| #from_field(&__emitter_target.#name),
                        |__emitter_context| #private::Result::map(#get, #unwrap),
                    )
                };
                Bound {
                    get: bind,
                    state,
                    context,
                    transaction,
                }
            }
        }
    }

    /// The registration's `Handler` for this event: the adapter and the states it needs.
    fn handler(&self, fn_name: &syn::Ident, run: Run, into_result: &TokenStream) -> TokenStream {
        let private = quote!(::emitter::__private);
        let event = self.event;
        let mut bindings = Vec::new();
        let mut args = Vec::new();
        let mut states = Vec::new();
        let mut contexts = Vec::new();
        let mut transactions = Vec::new();
        for (position, param) in self.params.iter().enumerate() {
            let local = format_ident!("__emitter_arg{}", position);
            let Bound {
                get,
                state,
                context,
                transaction,
            } = self.bind(position, param);
            bindings.push(quote!(let #local = #get?;));
            args.push(local);
            states.extend(state);
            contexts.extend(context);
            transactions.extend(transaction);
        }
        // The store transaction a parameter takes, at compile time.
        let transaction = if transactions.is_empty() {
            quote!(#private::None)
        } else {
            quote!(#private::first_transaction(&[#(#transactions),*]))
        };
        // Whether a delivery must carry the emitter's context, at compile time.
        let context = quote!(false #(|| #contexts)*);
        // The states of the parameters that may need one, those that do, at compile time.
        let states = if states.is_empty() {
            quote!(&[])
        } else {
            quote! {{
                const __EMITTER_STATES: &[#private::Option<#private::StateKey>] = &[#(#states),*];
                const __EMITTER_KEYS: [#private::StateKey; #private::count_states(__EMITTER_STATES)] =
                    #private::collect_states(__EMITTER_STATES);
                &__EMITTER_KEYS
            }}
        };
        // Spanned so that a future that is not `Send` is reported on the function's name.
        let call = quote_spanned! {fn_name.span()=>
            <_ as ::emitter::__private::ListenerFuture>::into_listener_future(#fn_name(#(#args),*))
        };
        let adapter = match run {
            Run::Now => quote! {
                #private::Adapter::<#event>::Now(
                    |__emitter_delivery: #private::Delivery<'_, #event>|
                     -> #private::Result<(), #private::Failure> {
                        let __emitter_event: &#event = __emitter_delivery.event();
                        #(#bindings)*
                        let __emitter_output = #private::now(#call)?;
                        #into_result
                    },
                )
            },
            Run::Future => quote! {
                #private::Adapter::<#event>::Future(
                    |__emitter_held: #private::Held<#event>,
                     __emitter_slot: &mut #private::AdapterSlot,
                     __emitter_cx: &mut #private::Context<'_>|
                     -> #private::Started {
                        #private::start(__emitter_slot, __emitter_cx, async move {
                            let __emitter_delivery = __emitter_held.delivery()?;
                            let __emitter_event: &#event = __emitter_delivery.event();
                            #(#bindings)*
                            let __emitter_output = #call.await;
                            #into_result
                        })
                    },
                )
            },
            Run::Blocking => quote! {
                #private::Adapter::<#event>::Future(
                    |__emitter_held: #private::Held<#event>,
                     __emitter_slot: &mut #private::AdapterSlot,
                     __emitter_cx: &mut #private::Context<'_>|
                     -> #private::Started {
                        #private::start(
                            __emitter_slot,
                            __emitter_cx,
                            #private::run_blocking(move || {
                                let __emitter_delivery = __emitter_held.delivery()?;
                                let __emitter_event: &#event = __emitter_delivery.event();
                                #(#bindings)*
                                let __emitter_output = #fn_name(#(#args),*);
                                #into_result
                            }),
                        )
                    },
                )
            },
        };
        let event_id = self.event_as(quote!(#private::Event), "ID");
        // The adapter is a closure in the registration's initializer, not a separate function:
        // type-checked in one body, an event type that is not an `Event` is reported once.
        quote! {
            #private::Handler {
                event_type: #private::TypeId::of::<#event>,
                event_type_name: #private::type_name::<#event>,
                event_id: #event_id,
                call: &#adapter,
                states: #states,
                context: #context,
                transaction: #transaction,
            }
        }
    }
}

/// How a parameter is bound: the expression, and what it needs from the emitter (see
/// [`Adapter::bind`]).
struct Bound {
    get: TokenStream,
    state: Option<TokenStream>,
    context: Option<TokenStream>,
    /// The store transaction the parameter takes (an `Option<TxKind>`), unless visibly none.
    transaction: Option<TokenStream>,
}

/// Whether a context type is `State<T>`, the one that needs shared state.
fn is_state(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|last| last.ident == "State"))
}

/// The type a context parameter is extracted as, and whether by reference.
struct Context {
    ty: TokenStream,
    by_ref: bool,
}

impl Context {
    fn of(ty: &Type, by_ref: bool) -> Self {
        Context {
            ty: quote!(#ty),
            by_ref,
        }
    }

    /// `<Select<..> as Pick<..>>::Context`, spanned from the first to the last token of the
    /// user's `target` type, so that an error on it underlines that type.
    fn picked(target: &Type, pick: &TokenStream, by_ref: bool) -> Self {
        let (first, last) = first_last_spans(target);
        let mut ty: Vec<TokenTree> = quote_spanned!(last=> <#pick>::Context)
            .into_iter()
            .collect();
        if let Some(token) = ty.first_mut() {
            token.set_span(first);
        }
        Context {
            ty: ty.into_iter().collect(),
            by_ref,
        }
    }
}

/// One check per pair of listed events written differently (`UserCreated`, `crate::UserCreated`,
/// an alias): the same event twice, found by its id, fails to compile on the second.
fn distinct_event_checks(events: &[syn::Path]) -> Vec<TokenStream> {
    let mut checks = Vec::new();
    for (i, later) in events.iter().enumerate() {
        for earlier in &events[..i] {
            let (first, last) = first_last_spans(later);
            let message = format!(
                "`{}` is `{}` again (it has the same event id): list each event once",
                path_to_string(later),
                path_to_string(earlier),
            );
            let mut args =
                proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, quote!(#message));
            args.set_span(last);
            let panic = quote_spanned!(first=> ::core::panic!);
            checks.push(quote! {
                const _: () = if ::emitter::__private::str_eq(
                    <#earlier as ::emitter::__private::Event>::ID,
                    <#later as ::emitter::__private::Event>::ID,
                ) {
                    #panic #args
                };
            });
        }
    }
    checks
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

/// Whether a return type can be written as `<Type as Trait>`: not if it holds `impl Trait` or `_`.
fn names_a_type(ty: &Type) -> bool {
    !matches!(
        ty,
        Type::ImplTrait(_) | Type::Infer(_) | Type::Macro(_) | Type::Verbatim(_)
    ) && inner_types(ty).into_iter().all(names_a_type)
}
