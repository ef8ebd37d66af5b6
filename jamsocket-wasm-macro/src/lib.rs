use proc_macro::TokenStream;
#[proc_macro_attribute]
pub fn jamsocket_wasm(_a: TokenStream, i: TokenStream) -> TokenStream { i }
