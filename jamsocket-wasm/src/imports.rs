//! The functions a guest imports from the host (module [`IMPORT_MODULE`]), declared once.
//!
//! On `wasm32` the [`GuestContext`](crate::guest_context::GuestContext) calls the safe wrappers
//! below; elsewhere it records calls instead, and only the compile-time check of the
//! declarations against [`jamsocket::abi`] remains.

use jamsocket::abi::{imports, IMPORT_MODULE};

/// Declares the host's imports: the `extern` block it is given (compiled on `wasm32` only, where
/// the host provides the imports) and, on every target, [`DECLARED`]: the same module name and
/// link names with their parameter and result counts, which a const assertion compares with
/// `jamsocket::abi`. Attributes cannot name a constant, so the link names must be literals; this
/// way they are still written once, and a mismatch fails the build.
macro_rules! host_imports {
    (
        #[link(wasm_import_module = $module:literal)]
        unsafe extern "C" {
            $(
                #[link_name = $link:literal]
                fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;
            )*
        }
    ) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = $module)]
        unsafe extern "C" {
            $(
                #[link_name = $link]
                fn $name($($arg: $ty),*) $(-> $ret)?;
            )*
        }

        /// The import module, and each import's link name, parameter count and result count,
        /// as declared.
        const DECLARED: (&str, &[(&str, usize, usize)]) = (
            $module,
            &[$((
                $link,
                <[&str]>::len(&[$(stringify!($arg)),*]),
                <[&str]>::len(&[$(stringify!($ret))?]),
            )),*],
        );
    };
}

host_imports! {
    #[link(wasm_import_module = "jamsocket")]
    unsafe extern "C" {
        #[link_name = "send_message"]
        fn send_message_import(recipient: u32, ptr: *const u8, len: usize);
        #[link_name = "send_binary"]
        fn send_binary_import(recipient: u32, ptr: *const u8, len: usize);
        #[link_name = "set_timer"]
        fn set_timer_import(ms_delay: u32);
        #[link_name = "user"]
        fn user_import(client: u32, ptr: *mut u8, cap: usize) -> i32;
    }
}

const _: () = assert!(
    matches_abi(DECLARED.0, DECLARED.1),
    "the guest's imports differ from `jamsocket::abi::IMPORT_MODULE` and \
     `jamsocket::abi::imports::FUNCTIONS`"
);

/// Whether `module` is [`IMPORT_MODULE`] and `functions` are those of [`imports::FUNCTIONS`],
/// in order, with the same parameter and result counts.
const fn matches_abi(module: &str, functions: &[(&str, usize, usize)]) -> bool {
    if !str_eq(module, IMPORT_MODULE) || functions.len() != imports::FUNCTIONS.len() {
        return false;
    }
    let mut i = 0;
    while i < functions.len() {
        let (name, params, results) = imports::FUNCTIONS[i];
        let (declared_name, declared_params, declared_results) = functions[i];
        if !str_eq(declared_name, name) || declared_params != params || declared_results != results
        {
            return false;
        }
        i += 1;
    }
    true
}

/// `a == b`, usable in a constant.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn send_message(recipient: u32, message: &[u8]) {
    // SAFETY: the host only reads `len` bytes at `ptr`, which `message` covers.
    unsafe { send_message_import(recipient, message.as_ptr(), message.len()) }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn send_binary(recipient: u32, message: &[u8]) {
    // SAFETY: as above.
    unsafe { send_binary_import(recipient, message.as_ptr(), message.len()) }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn set_timer(ms_delay: u32) {
    // SAFETY: takes no pointer.
    unsafe { set_timer_import(ms_delay) }
}

/// Asks the host for `client`'s encoded user, into `buf`: [`USER_NONE`](jamsocket::abi::USER_NONE)
/// or the encoding's length, the bytes written only if they fit.
#[cfg(target_arch = "wasm32")]
pub(crate) fn user(client: u32, buf: &mut [u8]) -> i32 {
    // SAFETY: the host writes at most `cap` bytes at `ptr`, which `buf` covers.
    unsafe { user_import(client, buf.as_mut_ptr(), buf.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ABI's imports in the shape of [`DECLARED`].
    fn abi() -> Vec<(&'static str, usize, usize)> {
        imports::FUNCTIONS.to_vec()
    }

    #[test]
    fn the_declared_imports_are_those_of_the_abi() {
        assert_eq!((DECLARED.0, DECLARED.1.to_vec()), (IMPORT_MODULE, abi()));
        assert!(matches_abi(DECLARED.0, DECLARED.1));
    }

    #[test]
    fn any_difference_from_the_abi_is_caught() {
        let abi = abi();
        assert!(matches_abi(IMPORT_MODULE, &abi));
        assert!(!matches_abi("env", &abi));
        assert!(!matches_abi(IMPORT_MODULE, &abi[1..]));

        let mut renamed = abi.clone();
        renamed[1].0 = "not_an_import";
        assert!(!matches_abi(IMPORT_MODULE, &renamed));

        let mut reordered = abi.clone();
        reordered.swap(0, 2);
        assert!(!matches_abi(IMPORT_MODULE, &reordered));

        let mut wrong_arity = abi.clone();
        wrong_arity[2].1 += 1;
        assert!(!matches_abi(IMPORT_MODULE, &wrong_arity));

        let mut no_result = abi.clone();
        no_result[3].2 = 0;
        assert!(!matches_abi(IMPORT_MODULE, &no_result));
    }
}
