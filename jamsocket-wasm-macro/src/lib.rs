//! The `#[jamsocket_wasm]` attribute, re-exported by (and meant to be used through) the
//! `jamsocket-wasm` crate.
//!
//! Put it on the struct, enum or type alias that implements
//! `jamsocket::SimpleJamsocketService`. It leaves the item as written and adds a thin shim: a
//! static cell holding the room's service and one `extern "C"` function per export of the
//! Jamsocket WebAssembly ABI (`jamsocket::abi::exports`, including the optional
//! `jamsocket_snapshot` / `jamsocket_restore` pair and `jamsocket_request`), each a one-line
//! call into `jamsocket_wasm::__private`. The exports exist only when compiling for `wasm32`, so
//! the same crate also builds natively (as an `rlib`) and its service can be used there as a
//! plain type.
//!
//! ```
//! use jamsocket_wasm::prelude::*;
//! use jamsocket_wasm::jamsocket::RecordingContext;
//!
//! #[jamsocket_wasm]
//! struct Echo;
//!
//! impl SimpleJamsocketService for Echo {
//!     fn new(_: &str, _: &impl JamsocketContext) -> Self {
//!         Echo
//!     }
//!
//!     fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
//!         ctx.send_message(client, message);
//!     }
//! }
//!
//! // Natively the service is a plain type, driven here by a recording context.
//! let ctx = RecordingContext::default();
//! Echo::new("room", &ctx).message(ClientId::from(1), "hi", &ctx);
//! assert_eq!(ctx.take_messages(), vec![(MessageRecipient::Client(ClientId::from(1)), "hi".to_string())]);
//! ```
//!
//! A module can export one service: a second `#[jamsocket_wasm]` in the same crate makes the
//! `wasm32` link fail with duplicate symbols.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use proc_macro::TokenStream;
use proc_macro2::{Ident, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// Exports a `SimpleJamsocketService` from a WebAssembly module.
///
/// See the crate documentation.
#[proc_macro_attribute]
pub fn jamsocket_wasm(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into()).into()
}

/// The attribute's expansion: the item unchanged, followed by the shim or by a compile error.
fn expand(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let shim = service_type(attr, item.clone())
        .map(|ty| shim(&ty))
        .unwrap_or_else(syn::Error::into_compile_error);
    quote! {
        #item
        #shim
    }
}

const USAGE: &str = "`#[jamsocket_wasm]` goes on the struct, enum or type alias that \
                     implements `SimpleJamsocketService`";

/// The name of the service type, or an error spanned on the offending tokens.
fn service_type(attr: TokenStream2, item: TokenStream2) -> syn::Result<Ident> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "`#[jamsocket_wasm]` takes no arguments",
        ));
    }
    let item: syn::Item = syn::parse2(item)?;
    let (ident, generics) = match &item {
        syn::Item::Struct(item) => (&item.ident, &item.generics),
        syn::Item::Enum(item) => (&item.ident, &item.generics),
        syn::Item::Type(item) => (&item.ident, &item.generics),
        syn::Item::Fn(item) => {
            return Err(syn::Error::new_spanned(
                &item.sig,
                format!("{USAGE}, not on a function"),
            ));
        }
        syn::Item::Impl(item) => {
            return Err(syn::Error::new(
                item.impl_token.span(),
                format!("{USAGE}: put it on the type's definition, not on the `impl` block"),
            ));
        }
        other => {
            return Err(syn::Error::new(
                item_keyword_span(other),
                format!("{USAGE}, not on this kind of item"),
            ));
        }
    };
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            generics,
            "`#[jamsocket_wasm]` cannot export a generic type: a module exports one concrete \
             service; define a type alias (`type MyService = Generic<u32>;`) and put the \
             attribute on it",
        ));
    }
    Ok(ident.clone())
}

/// The span of an item's leading keyword, falling back to the whole item.
fn item_keyword_span(item: &syn::Item) -> proc_macro2::Span {
    match item {
        syn::Item::Union(item) => item.union_token.span(),
        syn::Item::Trait(item) => item.trait_token.span(),
        syn::Item::Mod(item) => item.mod_token.span(),
        syn::Item::Const(item) => item.const_token.span(),
        syn::Item::Static(item) => item.static_token.span(),
        syn::Item::Use(item) => item.use_token.span(),
        other => other.span(),
    }
}

/// The exports, one line each: the required ones, the optional snapshot pair and
/// `jamsocket_request`. The names and signatures are those of `jamsocket::abi::exports` (a unit
/// test checks them); everything else lives in `jamsocket_wasm::__private`.
fn shim(ty: &Ident) -> TokenStream2 {
    let rt = quote!(::jamsocket_wasm::__private);
    // Spanned on the type name, so "does not implement SimpleJamsocketService" points at it.
    let assert_service = quote_spanned! {ty.span()=>
        const _: () = #rt::assert_service::<#ty>();
    };
    quote! {
        #assert_service

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static SERVICE: #rt::ServiceCell<#ty> = #rt::ServiceCell::new();

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_abi_version() -> u32 {
                #rt::abi_version()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_buffer(len: u32) -> u32 {
                #rt::buffer(len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_initialize(room_ptr: u32, room_len: u32) {
                #rt::initialize(&SERVICE, room_ptr, room_len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_connect(client: u32) {
                #rt::connect(&SERVICE, client)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_disconnect(client: u32) {
                #rt::disconnect(&SERVICE, client)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_message(client: u32, ptr: u32, len: u32) {
                #rt::message(&SERVICE, client, ptr, len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_binary(client: u32, ptr: u32, len: u32) {
                #rt::binary(&SERVICE, client, ptr, len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_timer() {
                #rt::timer(&SERVICE)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_snapshot() -> i64 {
                #rt::snapshot(&SERVICE)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_restore(ptr: u32, len: u32) -> i32 {
                #rt::restore(&SERVICE, ptr, len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn jamsocket_request(ptr: u32, len: u32) -> i64 {
                #rt::request(&SERVICE, ptr, len)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function's parameter and result types as wasm type names (`u32` crosses as `i32`).
    type Signature = (Vec<String>, Vec<String>);

    fn wasm_type(ty: &syn::Type) -> String {
        match quote!(#ty).to_string().as_str() {
            "u32" | "i32" => "i32".to_string(),
            "u64" | "i64" => "i64".to_string(),
            other => panic!("unexpected type `{other}` in an export"),
        }
    }

    /// The `no_mangle` functions of an expansion, by name, with their wasm signatures.
    fn exported_functions(expansion: TokenStream2) -> Vec<(String, Signature)> {
        let file: syn::File = syn::parse2(expansion).expect("the expansion parses as a file");
        let mut found = Vec::new();
        for item in &file.items {
            let syn::Item::Const(item) = item else {
                continue;
            };
            let syn::Expr::Block(block) = &*item.expr else {
                continue;
            };
            for stmt in &block.block.stmts {
                let syn::Stmt::Item(syn::Item::Fn(f)) = stmt else {
                    continue;
                };
                let no_mangle = f
                    .attrs
                    .iter()
                    .any(|a| quote!(#a).to_string().replace(' ', "") == "#[unsafe(no_mangle)]");
                assert!(no_mangle, "`{}` is not `no_mangle`", f.sig.ident);
                let params = f
                    .sig
                    .inputs
                    .iter()
                    .map(|input| match input {
                        syn::FnArg::Typed(arg) => wasm_type(&arg.ty),
                        syn::FnArg::Receiver(_) => panic!("`{}` takes self", f.sig.ident),
                    })
                    .collect();
                let results = match &f.sig.output {
                    syn::ReturnType::Default => vec![],
                    syn::ReturnType::Type(_, ty) => vec![wasm_type(ty)],
                };
                found.push((f.sig.ident.to_string(), (params, results)));
            }
        }
        found.sort();
        found
    }

    #[test]
    fn exports_match_the_abi() {
        use jamsocket::abi::exports::{FUNCTIONS, OPTIONAL_FUNCTIONS};
        let names = |types: &[&str]| types.iter().map(|t| t.to_string()).collect();
        // Every required export, all `i32`, and every optional one with its own types.
        let mut expected: Vec<(String, Signature)> = FUNCTIONS
            .iter()
            .map(|&(name, params, results)| {
                let signature = (
                    vec!["i32".to_string(); params],
                    vec!["i32".to_string(); results],
                );
                (name.to_string(), signature)
            })
            .chain(OPTIONAL_FUNCTIONS.iter().map(|&(name, params, results)| {
                (name.to_string(), (names(params), names(results)))
            }))
            .collect();
        expected.sort();
        assert_eq!(
            exported_functions(expand(
                quote!(),
                quote!(
                    struct Counter(i32);
                )
            )),
            expected
        );
    }

    #[test]
    fn exports_are_wasm_only() {
        let expansion = expand(
            quote!(),
            quote!(
                struct Counter;
            ),
        )
        .to_string();
        assert!(expansion.contains("# [cfg (target_arch = \"wasm32\")] const _"));
    }

    #[test]
    fn the_item_is_kept_unchanged() {
        let item = quote!(
            #[derive(Debug)]
            pub enum Mode {
                A,
                B,
            }
        );
        let expansion = expand(quote!(), item.clone()).to_string();
        assert!(expansion.starts_with(&item.to_string()));
    }

    #[test]
    fn accepts_type_aliases_and_tuple_structs() {
        for item in [
            quote!(
                type Service = Inner;
            ),
            quote!(
                struct Counter(i32, u8);
            ),
        ] {
            assert!(service_type(quote!(), item).is_ok());
        }
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let cases = [
            (
                quote!(),
                quote!(
                    fn f() {}
                ),
                "not on a function",
            ),
            (
                quote!(x),
                quote!(
                    struct S;
                ),
                "takes no arguments",
            ),
            (
                quote!(),
                quote!(
                    struct S<T>(T);
                ),
                "generic",
            ),
            (
                quote!(),
                quote!(
                    struct S
                    where
                        u8: Copy;
                ),
                "generic",
            ),
            (quote!(), quote!(impl S {}), "not on the `impl` block"),
            (
                quote!(),
                quote!(union U { a: u8 }),
                "not on this kind of item",
            ),
            (quote!(), quote!(this is not an item), "expected"),
        ];
        for (attr, item, message) in cases {
            let err = service_type(attr.clone(), item.clone()).expect_err(&item.to_string());
            assert!(
                err.to_string().contains(message),
                "{item}: {err} should contain {message:?}"
            );
            // The original item is still emitted next to the error.
            let expansion = expand(attr, item.clone()).to_string();
            assert!(expansion.starts_with(&item.to_string()));
            assert!(expansion.contains("compile_error"));
        }
    }
}
