//! Compile-pass and compile-fail cases for `#[jamsocket_wasm]` (natively: the wasm exports are
//! compiled and checked when the example guests are built for `wasm32-wasip1`).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
