//! `#[derive(Event)]`: the `Event` impl, serde impls through a remote mirror, and the registration.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::tokens::inner_types;

/// Options of the derive, from `#[event(...)]` on the struct.
#[derive(Default)]
struct EventOptions {
    id: Option<LitStr>,
    version: Option<(syn::LitInt, u32)>,
    upcasts: Vec<Upcast>,
}

/// `upcast(from = 1, with = path)`: the function that brings version `from` to `from + 1`.
struct Upcast {
    keyword: syn::Path,
    from: Option<(syn::LitInt, u32)>,
    with: Option<syn::Path>,
}

// Accepted syntax (all optional; `id` and `version` at most once, `upcast` once per older
// version), on the struct only:
//     #[event(id = "some.id", version = 3, upcast(from = 1, with = v1_to_v2),
//             upcast(from = 2, with = v2_to_v3))]
fn parse_options(input: &DeriveInput) -> syn::Result<EventOptions> {
    let mut options = EventOptions::default();
    let mut errors: Option<syn::Error> = None;
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("event"))
    {
        if !matches!(attr.meta, syn::Meta::List(_)) {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    attr,
                    "`#[event]` takes options: write `#[event(id = \"user_created\")]`, or remove it",
                ),
            );
            continue;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            let key = path_to_string(&meta.path);
            let given = match key.as_str() {
                "id" => options.id.is_some(),
                "version" => options.version.is_some(),
                "upcast" => false,
                _ => {
                    combine(
                        &mut errors,
                        meta.error(format!(
                            "unknown `event` option `{key}`: the options are `id = \"...\"`, `version = N` and `upcast(from = N, with = function)`"
                        )),
                    );
                    return skip_value(&meta);
                }
            };
            if given {
                combine(
                    &mut errors,
                    meta.error(format!(
                        "`{key}` is given twice: keep one `{key} = {}`",
                        if key == "id" { "\"...\"" } else { "N" }
                    )),
                );
                return skip_value(&meta);
            }
            match key.as_str() {
                "id" => {
                    let value: LitStr = meta.value()?.parse().map_err(|error| {
                        syn::Error::new(
                            error.span(),
                            "`id` takes a string literal: write `id = \"user_created\"`",
                        )
                    })?;
                    if value.value().trim().is_empty() {
                        combine(
                            &mut errors,
                            syn::Error::new_spanned(
                                &value,
                                "the event id must not be empty: write `id = \"user_created\"`, or leave `id` out to use the snake_case type name",
                            ),
                        );
                    }
                    options.id = Some(value);
                }
                "version" => {
                    let version = parse_version(&meta, "`version` takes a whole number from 1: write `version = 2`")?;
                    options.version = Some(version);
                }
                _ => options.upcasts.push(parse_upcast(&meta, &mut errors)?),
            }
            Ok(())
        });
        if let Err(error) = parsed {
            combine(&mut errors, error);
        }
    }
    check_upcasts(&options, &mut errors);
    for attr in misplaced_event_attrs(&input.data) {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                attr,
                "`#[event(...)]` goes on the struct, not on a field: move it above `struct`",
            ),
        );
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(options),
    }
}

/// A version number after `=`: an integer literal from 1.
fn parse_version(
    meta: &syn::meta::ParseNestedMeta<'_>,
    expected: &str,
) -> syn::Result<(syn::LitInt, u32)> {
    let literal: syn::LitInt = meta
        .value()?
        .parse()
        .map_err(|error| syn::Error::new(error.span(), expected))?;
    match literal.base10_parse::<u32>() {
        Ok(number) if number >= 1 => Ok((literal, number)),
        _ => Err(syn::Error::new_spanned(&literal, expected)),
    }
}

const UPCAST_SYNTAX: &str = "write `upcast(from = 1, with = v1_to_v2)`, where `v1_to_v2` is a `fn(serde_json::Value) -> Result<serde_json::Value, E>` that turns the JSON of version 1 into that of version 2";

// Accepted syntax: `upcast(from = <version>, with = <path to a function>)`, each key once.
fn parse_upcast(
    meta: &syn::meta::ParseNestedMeta<'_>,
    errors: &mut Option<syn::Error>,
) -> syn::Result<Upcast> {
    let mut upcast = Upcast {
        keyword: meta.path.clone(),
        from: None,
        with: None,
    };
    if !meta.input.peek(syn::token::Paren) {
        return Err(meta.error(format!("`upcast` takes options: {UPCAST_SYNTAX}")));
    }
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("from") && upcast.from.is_none() {
            upcast.from = Some(parse_version(
                &inner,
                "`from` takes the version the upcaster reads, a whole number from 1: write `from = 1`",
            )?);
        } else if inner.path.is_ident("with") && upcast.with.is_none() {
            upcast.with = Some(inner.value()?.parse().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    "`with` takes the path of a function: write `with = v1_to_v2`",
                )
            })?);
        } else if inner.path.is_ident("from") || inner.path.is_ident("with") {
            let key = path_to_string(&inner.path);
            combine(
                errors,
                inner.error(format!("`{key}` is given twice in one `upcast`: keep one")),
            );
            skip_value(&inner)?;
        } else {
            combine(
                errors,
                inner.error(format!(
                    "unknown `upcast` option `{}`: {UPCAST_SYNTAX}",
                    path_to_string(&inner.path)
                )),
            );
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    if upcast.from.is_none() || upcast.with.is_none() {
        let missing = if upcast.from.is_none() {
            "from"
        } else {
            "with"
        };
        combine(
            errors,
            syn::Error::new_spanned(
                &upcast.keyword,
                format!("`upcast` needs `{missing}`: {UPCAST_SYNTAX}"),
            ),
        );
    }
    Ok(upcast)
}

/// Each upcaster reads a version older than the event's, no two read the same one, and every
/// older version has one: a stored event of any version up to the event's can be brought up to
/// date, one version at a time.
fn check_upcasts(options: &EventOptions, errors: &mut Option<syn::Error>) {
    let version = options.version.as_ref().map_or(1, |(_, number)| *number);
    let mut seen = std::collections::BTreeSet::new();
    for (literal, from) in options
        .upcasts
        .iter()
        .filter_map(|upcast| upcast.from.as_ref())
    {
        if *from >= version {
            let message = match &options.version {
                None => format!("`upcast(from = {from})` reads version {from}, but the event has no `version` (so it is version 1): add `version = {}` to read the events stored at version {from}", from + 1),
                Some(_) => format!("`upcast(from = {from})` reads version {from}, but the event is version {version}: an upcaster brings an older version to the next, so `from` is below {version}"),
            };
            combine(errors, syn::Error::new_spanned(literal, message));
        } else if !seen.insert(*from) {
            combine(
                errors,
                syn::Error::new_spanned(
                    literal,
                    format!(
                        "two upcasters read version {from}: keep one `upcast(from = {from}, ...)`"
                    ),
                ),
            );
        }
    }
    let complete = options.upcasts.iter().all(|upcast| upcast.from.is_some());
    let missing: Vec<u32> = (1..version).filter(|from| !seen.contains(from)).collect();
    if let (Some((literal, _)), Some(&first), true) = (&options.version, missing.first(), complete)
    {
        let versions = missing
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        combine(
            errors,
            syn::Error::new_spanned(
                literal,
                format!(
                    "version {version} needs an upcaster from every older version, and none reads version {versions}: add `upcast(from = {first}, with = v{first}_to_v{})`, a function from the JSON of version {first} to that of version {}",
                    first + 1,
                    first + 1
                ),
            ),
        );
    }
}

/// `#[event]` attributes on fields, which the derive would otherwise ignore.
fn misplaced_event_attrs(data: &Data) -> Vec<&syn::Attribute> {
    let fields: Vec<&syn::Field> = match data {
        Data::Struct(data) => data.fields.iter().collect(),
        Data::Enum(_) | Data::Union(_) => Vec::new(),
    };
    fields
        .into_iter()
        .flat_map(|field| &field.attrs)
        .filter(|attr| attr.path().is_ident("event"))
        .collect()
}

pub(crate) fn expand(input: DeriveInput) -> TokenStream {
    match try_expand(&input) {
        Ok(expanded) => expanded,
        Err(errors) => {
            let fallback = fallback(&input);
            let errors = errors.into_compile_error();
            quote!(#fallback #errors)
        }
    }
}

/// On error, an `Event` impl that is never run (thiserror's habit), so that the listeners and
/// `emit!` calls naming the type do not each add a "not an event" error to the real one.
fn fallback(input: &DeriveInput) -> Option<TokenStream> {
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return None;
    }
    let ident = &input.ident;
    let id = snake_case(&ident.to_string());
    let private = quote!(::emitter::__private);
    let field_names = field_names(&input.data);
    Some(quote! {
        const _: () = {
            impl #private::serde::Serialize for #ident {
                fn serialize<__S>(&self, _: __S) -> #private::Result<__S::Ok, __S::Error>
                where
                    __S: #private::serde::Serializer,
                {
                    ::core::unreachable!()
                }
            }

            impl<'de> #private::serde::Deserialize<'de> for #ident {
                fn deserialize<__D>(_: __D) -> #private::Result<Self, __D::Error>
                where
                    __D: #private::serde::Deserializer<'de>,
                {
                    ::core::unreachable!()
                }
            }

            impl #private::Event for #ident {
                const ID: &'static str = #id;
                const FIELDS: &'static [&'static str] = &[#(#field_names),*];
            }
        };
    })
}

/// The names of a struct's named fields, as listeners write them (`r#type` is `type`).
fn field_names(data: &Data) -> Vec<String> {
    match data {
        Data::Struct(data) => data
            .fields
            .iter()
            .filter_map(|field| field.ident.as_ref())
            .map(|ident| ident.unraw().to_string())
            .collect(),
        Data::Enum(_) | Data::Union(_) => Vec::new(),
    }
}

fn try_expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors: Option<syn::Error> = None;
    let options = parse_options(input).unwrap_or_else(|error| {
        combine(&mut errors, error);
        EventOptions::default()
    });

    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => Some(fields),
            Fields::Unnamed(_) | Fields::Unit => {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(
                        &input.ident,
                        "`#[derive(Event)]` needs a struct with named fields: listeners bind their parameters to fields by name, so write `struct Name { field: Type }`",
                    ),
                );
                None
            }
        },
        Data::Enum(data) => {
            combine(
                &mut errors,
                syn::Error::new(
                    data.enum_token.span,
                    "`#[derive(Event)]` needs a struct with named fields, not an enum: make one event struct per variant",
                ),
            );
            None
        }
        Data::Union(data) => {
            combine(
                &mut errors,
                syn::Error::new(
                    data.union_token.span,
                    "`#[derive(Event)]` needs a struct with named fields, not a union",
                ),
            );
            None
        }
    };
    let params = &input.generics.params;
    let borrows = !params.is_empty()
        && params
            .iter()
            .all(|param| matches!(param, syn::GenericParam::Lifetime(_)));
    if borrows {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                &input.generics,
                "an event cannot borrow: it is queued, stored and read back, so it owns its data; remove the lifetime and give the fields owned types (`String` rather than `&str`)",
            ),
        );
    } else if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                &input.generics,
                "an event cannot be generic: its id names one concrete type; define one event struct per concrete type",
            ),
        );
    }
    // A struct with a lifetime has borrowed fields: its one error says so.
    if let Some(fields) = fields.filter(|_| !borrows) {
        for field in &fields.named {
            if let Some(reference) = first_reference(&field.ty) {
                combine(&mut errors, borrowed_field(reference));
            }
        }
    }
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"))
    {
        let _ = attr.parse_nested_meta(|meta| {
            for (key, why) in CONFLICTING_SERDE_OPTIONS {
                if meta.path.is_ident(key) {
                    combine(
                        &mut errors,
                        meta.error(format!(
                            "`#[serde({key} = ...)]` cannot be used on an event: {why}"
                        )),
                    );
                }
            }
            skip_value(&meta)
        });
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    let Some(fields) = fields else {
        return Ok(TokenStream::new());
    };

    let ident = &input.ident;
    let field_names = field_names(&input.data);
    let id = match &options.id {
        Some(id) => (*id).clone(),
        None => LitStr::new(&snake_case(&ident.to_string()), ident.span()),
    };
    let ident_str = ident.to_string();
    let remote = format_ident!("__EmitterRemote{}", ident);
    let remote_path = LitStr::new(&ident_str, ident.span());
    let container_serde = input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"));
    let mirror_fields = fields.named.iter().map(|field| {
        let attrs = field
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("serde"));
        let checked = checked_field(field);
        let name = &field.ident;
        let ty = &field.ty;
        quote!(#(#attrs)* #checked #name: #ty)
    });
    let private = quote!(::emitter::__private);
    let version = options
        .version
        .as_ref()
        .map(|(literal, _)| quote!(const VERSION: u32 = #literal;));
    let mut upcasts: Vec<(u32, &syn::Path)> = options
        .upcasts
        .iter()
        .filter_map(|upcast| Some((upcast.from.as_ref()?.1, upcast.with.as_ref()?)))
        .collect();
    upcasts.sort_by_key(|(from, _)| *from);
    // A function of the wrong shape is reported on the user's path.
    let upcasters = upcasts.iter().map(|(_, with)| {
        quote_spanned! {with.span()=>
            |value| #private::upcast_with(#with, value)
        }
    });
    let registration = quote_spanned! {ident.span()=>
        #private::inventory::submit! {
            #private::EventRegistration {
                id: <#ident as #private::Event>::ID,
                type_name: ::core::concat!(::core::module_path!(), "::", #ident_str),
                type_id: #private::TypeId::of::<#ident>,
                file: ::core::file!(),
                line: ::core::line!(),
                encode: #private::encode_json::<#ident>,
                decode: #private::decode_json::<#ident>,
                version: <#ident as #private::Event>::VERSION,
                upcasters: &[#(#upcasters),*],
                decode_value: #private::decode_json_value::<#ident>,
            }
        }
    };

    Ok(quote! {
        const _: () = {
            // serde's remote derive writes the (de)serializer for a mirror of the struct that
            // names its type: users get serde's full derive without depending on serde.
            #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
            #[serde(crate = "::emitter::__private::serde", remote = #remote_path)]
            #(#container_serde)*
            #[allow(dead_code, non_camel_case_types)]
            struct #remote {
                #(#mirror_fields,)*
            }

            impl #private::serde::Serialize for #ident {
                fn serialize<__S>(&self, serializer: __S) -> #private::Result<__S::Ok, __S::Error>
                where
                    __S: #private::serde::Serializer,
                {
                    #remote::serialize(self, serializer)
                }
            }

            impl<'de> #private::serde::Deserialize<'de> for #ident {
                fn deserialize<__D>(deserializer: __D) -> #private::Result<Self, __D::Error>
                where
                    __D: #private::serde::Deserializer<'de>,
                {
                    #remote::deserialize(deserializer)
                }
            }

            impl #private::Event for #ident {
                const ID: &'static str = #id;
                const FIELDS: &'static [&'static str] = &[#(#field_names),*];
                #version
            }

            #registration
        };
    })
}

/// serde's field options that say how a field is (de)serialized, or that it is not.
const OWN_SERDE_HANDLING: &[&str] = &[
    "with",
    "serialize_with",
    "deserialize_with",
    "skip",
    "skip_serializing",
    "skip_deserializing",
    "flatten",
];

/// `#[serde(serialize_with, deserialize_with)]` through `EventField`, so that a field type
/// without serde's traits is one error on the field with the fix, rather than an error per use
/// in serde's code. serde leaves a missing `Option` field `None` only without `deserialize_with`,
/// so an `Option` field also gets `default`, unless it has serde options of its own. Types that
/// are serializable by construction (`u64`, `String`, `Vec<String>`, ...) are left to serde:
/// each checked field costs serde two wrapper types to compile.
fn checked_field(field: &syn::Field) -> Option<TokenStream> {
    if serializable_by_construction(&field.ty) {
        return None;
    }
    let mut default = false;
    for attr in field
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"))
    {
        let mut own = false;
        let _ = attr.parse_nested_meta(|meta| {
            own |= OWN_SERDE_HANDLING.iter().any(|key| meta.path.is_ident(key));
            default |= meta.path.is_ident("default");
            skip_value(&meta)
        });
        if own {
            return None;
        }
    }
    let ty = &field.ty;
    let span = ty
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(proc_macro2::Span::call_site, |token| token.span());
    let field_trait = quote!(<#ty as ::emitter::__private::EventField>).to_string();
    let serialize = LitStr::new(&format!("{field_trait}::serialize_field"), span);
    let deserialize = LitStr::new(&format!("{field_trait}::deserialize_field"), span);
    let is_option = matches!(ty, syn::Type::Path(path)
        if path.qself.is_none() && path.path.segments.last().is_some_and(|last| last.ident == "Option"));
    let default = (is_option && !default).then(|| quote!(#[serde(default)]));
    Some(quote! {
        #[serde(serialize_with = #serialize, deserialize_with = #deserialize)]
        #default
    })
}

/// Whether serde implements its traits for a type, known from its spelling: primitives, `String`,
/// and std's containers, tuples and arrays of such types.
fn serializable_by_construction(ty: &syn::Type) -> bool {
    const LEAVES: &[&str] = &[
        "bool", "char", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
        "i128", "isize", "f32", "f64", "String",
    ];
    const CONTAINERS: &[&str] = &[
        "Option", "Vec", "VecDeque", "Box", "HashMap", "BTreeMap", "HashSet", "BTreeSet",
    ];
    let known = match ty {
        syn::Type::Tuple(_) | syn::Type::Array(_) | syn::Type::Paren(_) | syn::Type::Group(_) => {
            true
        }
        syn::Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().is_some_and(|last| {
                let name = last.ident.to_string();
                match &last.arguments {
                    syn::PathArguments::None => LEAVES.contains(&name.as_str()),
                    syn::PathArguments::AngleBracketed(_) => CONTAINERS.contains(&name.as_str()),
                    syn::PathArguments::Parenthesized(_) => false,
                }
            })
        }
        _ => false,
    };
    known
        && inner_types(ty)
            .into_iter()
            .all(serializable_by_construction)
}

/// Container options of serde that the derive sets itself.
const CONFLICTING_SERDE_OPTIONS: &[(&str, &str)] = &[
    ("remote", "`#[derive(Event)]` implements `Serialize` and `Deserialize` for the event itself; remove it"),
    ("crate", "`#[derive(Event)]` uses the serde that `emitter` brings; remove it"),
];

/// The first reference in a field's type (`&'static str`, `Option<&str>`), which an event cannot
/// hold.
fn first_reference(ty: &syn::Type) -> Option<&syn::TypeReference> {
    match ty {
        syn::Type::Reference(reference) => Some(reference),
        other => inner_types(other).into_iter().find_map(first_reference),
    }
}

fn borrowed_field(reference: &syn::TypeReference) -> syn::Error {
    let owned = match &*reference.elem {
        syn::Type::Path(path) if path.path.is_ident("str") => "String".to_owned(),
        syn::Type::Slice(slice) => {
            let elem = &slice.elem;
            format!("Vec<{}>", quote!(#elem).to_string().replace(' ', ""))
        }
        other => quote!(#other).to_string().replace(' ', ""),
    };
    let written = quote!(#reference)
        .to_string()
        .replace(" '", "'")
        .replace("& ", "&");
    syn::Error::new_spanned(
        reference,
        format!("an event field cannot borrow (`{written}`): an event is queued, stored and read back, so it owns its data; write `{owned}`"),
    )
}

/// `UserCreated` → `user_created`, `HTTPRequestSent` → `http_request_sent`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let starts_word = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(char::is_lowercase),
                Some(_) => false,
            };
            if starts_word {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn combine(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

/// Skips the value of an attribute key that was already reported, so that the keys after it are
/// still checked.
pub(crate) fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

pub(crate) fn path_to_string(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_splits_words_and_acronyms() {
        assert_eq!(snake_case("UserCreated"), "user_created");
        assert_eq!(snake_case("HTTPRequestSent"), "http_request_sent");
        assert_eq!(snake_case("Event2Fired"), "event2_fired");
        assert_eq!(snake_case("Ping"), "ping");
        assert_eq!(snake_case("ABC"), "abc");
    }
}
