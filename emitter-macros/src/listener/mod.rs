//! `#[listener(events = [...])]`: keeps the function, adds one typed adapter per event and a
//! link-time registration. Split as the attribute is processed: [`parse`] the arguments,
//! [`validate`] the signature, [`expand`] the output.

mod expand;
mod parse;
mod place;
mod suspend;
mod validate;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemFn;

use crate::event::combine;

use self::expand::generate;
use self::parse::{parse_args, ListenerArgs, Policy};
use self::validate::validate_signature;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(block) = place::enclosing_block() {
        return with_error(item.clone(), in_block(block, item));
    }
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => return with_error(item.clone(), not_a_function(item)),
    };
    match expand_fn(args, &function) {
        Ok(expanded) => expanded,
        Err(error) => with_error(item, error),
    }
}

/// The user's item unchanged plus the errors, so one mistake does not cascade into many.
fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
}

/// The attribute on a method or associated function: the emitter calls a listener by its path,
/// which a function in an `impl` or `trait` block does not have on its own.
fn in_block(block: place::Block, item: TokenStream) -> syn::Error {
    let sig = syn::parse2::<ItemFn>(item.clone())
        .map(|function| function.sig)
        .or_else(|_| syn::parse2::<syn::TraitItemFn>(item).map(|function| function.sig));
    let (name, span) = match sig {
        Ok(sig) => (sig.ident.to_string(), sig.ident.span()),
        Err(_) => ("the function".to_owned(), Span::call_site()),
    };
    let within = match block {
        place::Block::Impl => "an `impl` block",
        place::Block::Trait => "a trait",
    };
    syn::Error::new(
        span,
        format!("`#[listener]` goes on a free function, not on a method or associated function in {within}: move `{name}` out to the module, and take what it needs as parameters (`State<T>` for shared state)"),
    )
}

fn not_a_function(item: TokenStream) -> syn::Error {
    use syn::Item;
    if let Ok(method) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        return syn::Error::new_spanned(
            method.sig.fn_token,
            "`#[listener]` goes on a function with a body, not on a method declaration: the emitter calls listeners as free functions; write `async fn name(field: &Type, ...) { ... }` outside the trait",
        );
    }
    let (span, what) = match syn::parse2::<Item>(item) {
        Ok(Item::Struct(item)) => (item.struct_token.span, "a struct"),
        Ok(Item::Enum(item)) => (item.enum_token.span, "an enum"),
        Ok(Item::Union(item)) => (item.union_token.span, "a union"),
        Ok(Item::Trait(item)) => (item.trait_token.span, "a trait"),
        Ok(Item::Impl(item)) => (item.impl_token.span, "an impl block"),
        Ok(Item::Mod(item)) => (item.mod_token.span, "a module"),
        Ok(Item::Const(item)) => (item.const_token.span, "a const"),
        Ok(Item::Static(item)) => (item.static_token.span, "a static"),
        Ok(Item::Type(item)) => (item.type_token.span, "a type alias"),
        Ok(Item::Use(item)) => (item.use_token.span, "a `use`"),
        _ => (Span::call_site(), "this item"),
    };
    syn::Error::new(
        span,
        format!("`#[listener]` goes on a function, not on {what}: write `async fn name(field: &Type, ...)` or a plain `fn`"),
    )
}

fn expand_fn(args: TokenStream, function: &ItemFn) -> syn::Result<TokenStream> {
    let mut errors: Option<syn::Error> = None;
    let args = parse_args(args).unwrap_or_else(|error| {
        combine(&mut errors, error);
        ListenerArgs {
            events: Vec::new(),
            name: None,
            aliases: Vec::new(),
            policy: Policy::default(),
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
