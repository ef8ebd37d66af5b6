//! Load-time checks: every module is checked against `jamsocket::abi` before any room exists.

use crate::common::{example_wasm, test_config, WatGuest};
use jamsocket::abi::{imports, ABI_VERSION, IMPORT_MODULE, OLDEST_ABI_VERSION};
use jamsocket_wasm_host::{WasmHostConfig, WasmHostError, WasmHostFactory};
use std::time::Duration;

fn load_error(guest: WatGuest) -> WasmHostError {
    guest
        .load(test_config())
        .expect_err("the module should be refused")
}

#[test]
fn the_default_wat_guest_loads() {
    WatGuest::default().factory();
}

#[test]
fn a_wrong_abi_version_names_it_and_the_supported_range() {
    for found in [0, ABI_VERSION + 1, 999] {
        let body = format!("i32.const {found}");
        let error = load_error(WatGuest::default().body("jamsocket_abi_version", &body));
        assert!(
            matches!(
                error,
                WasmHostError::AbiVersionMismatch { found: f, oldest, newest, .. }
                    if f == found && oldest == OLDEST_ABI_VERSION && newest == ABI_VERSION
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("version {found},"))
                && message.contains(&format!("versions {OLDEST_ABI_VERSION} to {ABI_VERSION}")),
            "{message}"
        );
    }
}

#[test]
fn every_supported_abi_version_loads() {
    assert_eq!((OLDEST_ABI_VERSION, ABI_VERSION), (1, 3));
    for version in OLDEST_ABI_VERSION..=ABI_VERSION {
        let body = format!("i32.const {version}");
        WatGuest::default()
            .body("jamsocket_abi_version", &body)
            .factory();
    }
}

#[test]
fn the_version_is_checked_before_the_other_exports() {
    let error = load_error(
        WatGuest::default()
            .body("jamsocket_abi_version", "i32.const 7")
            .without("jamsocket_timer"),
    );
    assert!(
        matches!(error, WasmHostError::AbiVersionMismatch { found: 7, .. }),
        "{error:?}"
    );
}

#[test]
fn a_failing_version_export_is_reported() {
    for body in ["unreachable", "(loop $spin (br $spin)) i32.const 1"] {
        let guest = WatGuest::default().body("jamsocket_abi_version", body);
        let config = test_config().with_cpu_time_per_call(Duration::from_millis(50));
        let error = guest.load(config).expect_err(body);
        assert!(
            matches!(error, WasmHostError::AbiVersionCheck { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("jamsocket_abi_version"),
            "{error}"
        );
    }
}

#[test]
fn a_version_export_that_calls_an_import_is_reported() {
    let body = "(call $set_timer (i32.const 1)) i32.const 1";
    let error = load_error(WatGuest::default().body("jamsocket_abi_version", body));
    assert!(
        matches!(error, WasmHostError::AbiVersionCheck { .. }),
        "{error:?}"
    );
}

#[test]
fn every_missing_export_is_named() {
    for (export, ..) in jamsocket::abi::exports::FUNCTIONS {
        let error = load_error(WatGuest::default().without(export));
        match &error {
            WasmHostError::MissingExport {
                export: missing, ..
            } => assert_eq!(*missing, export),
            other => panic!("{export}: {other:?}"),
        }
        assert!(error.to_string().contains(export), "{error}");
    }
    let error = load_error(WatGuest::default().memory("(memory 1)"));
    assert!(
        matches!(
            error,
            WasmHostError::MissingExport {
                export: "memory",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_wrong_export_signature_is_named() {
    let error = load_error(
        WatGuest::default()
            .signature("jamsocket_buffer", "(param i32)")
            .body("jamsocket_buffer", ""),
    );
    match &error {
        WasmHostError::ExportSignature {
            export,
            expected,
            found,
            ..
        } => {
            assert_eq!(*export, "jamsocket_buffer");
            assert_eq!(expected, "a function (i32) -> (i32)");
            assert_eq!(found, "a function (i32) -> ()");
        }
        other => panic!("{other:?}"),
    }
    let error = load_error(
        WatGuest::default()
            .signature("jamsocket_connect", "(param i64)")
            .body("jamsocket_connect", ""),
    );
    assert!(
        matches!(
            error,
            WasmHostError::ExportSignature {
                export: "jamsocket_connect",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn unknown_imports_are_named() {
    let error = load_error(
        WatGuest::default().import(r#"(import "jamsocket" "close_room" (func (param i32)))"#),
    );
    match &error {
        WasmHostError::UnknownImport {
            import_module,
            name,
            ..
        } => assert_eq!(
            (import_module.as_str(), name.as_str()),
            ("jamsocket", "close_room")
        ),
        other => panic!("{other:?}"),
    }
    let error =
        load_error(WatGuest::default().import(r#"(import "env" "abort" (func (param i32)))"#));
    assert!(error.to_string().contains("`env::abort`"), "{error}");

    let error =
        load_error(WatGuest::default().import(r#"(import "jamsocket" "memory" (memory 1))"#));
    assert!(
        matches!(error, WasmHostError::UnknownImport { .. }),
        "{error:?}"
    );

    // WASI names are checked by the linker.
    let error = load_error(
        WatGuest::default()
            .import(r#"(import "wasi_snapshot_preview1" "no_such_function" (func (param i32)))"#),
    );
    assert!(matches!(error, WasmHostError::Link { .. }), "{error:?}");
}

#[test]
fn a_wrong_import_signature_is_named() {
    let set_timer = imports::SET_TIMER;
    let guest = WatGuest::default().import(&format!(
        r#"(import "{IMPORT_MODULE}" "{set_timer}" (func $timer2 (param i64)))"#
    ));
    let error = load_error(guest);
    match &error {
        WasmHostError::ImportSignature {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, set_timer);
            assert_eq!(expected, "a function (i32) -> ()");
            assert_eq!(found, "a function (i64) -> ()");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_that_is_not_wasm_is_refused_by_path() {
    let dir = std::env::temp_dir().join(format!("jamsocket-wasm-host-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not-a-module.wasm");
    std::fs::write(&path, "#!/bin/sh\necho hello\n").unwrap();
    let error = WasmHostFactory::new(&path).unwrap_err();
    assert!(matches!(error, WasmHostError::NotWasm { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );

    // WAT text is not accepted either: the host loads binaries.
    std::fs::write(&path, WatGuest::default().wat()).unwrap();
    assert!(matches!(
        WasmHostFactory::new(&path),
        Err(WasmHostError::NotWasm { .. })
    ));

    let missing = dir.join("missing.wasm");
    let error = WasmHostFactory::new(&missing).unwrap_err();
    assert!(matches!(error, WasmHostError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.wasm"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_and_component_binaries_are_refused() {
    let mut wasm = WatGuest::default().wasm();
    wasm.truncate(wasm.len() / 2);
    let error = WasmHostFactory::from_bytes(&wasm, test_config()).unwrap_err();
    assert!(matches!(error, WasmHostError::Compile { .. }), "{error:?}");

    let component = wat::parse_str("(component)").unwrap();
    let error = WasmHostFactory::from_bytes(&component, test_config()).unwrap_err();
    assert!(
        matches!(error, WasmHostError::Component { .. }),
        "{error:?}"
    );
}

#[test]
fn an_initial_memory_over_the_limit_is_refused_at_load() {
    let guest = WatGuest::default().memory(r#"(memory (export "memory") 32)"#);
    let config = test_config().with_max_memory_bytes(1 << 20);
    let error = guest.load(config).unwrap_err();
    assert!(matches!(error, WasmHostError::Compile { .. }), "{error:?}");
    let chain = error_chain(&error);
    assert!(
        chain.contains("exceeds the limit of 0x100000 bytes"),
        "{chain}"
    );
    // The Rust examples fit in the default limit.
    WasmHostFactory::with_config(example_wasm("counter-service"), test_config()).unwrap();
}

/// An error's message followed by its sources'.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn invalid_settings_are_refused() {
    let error = WatGuest::default()
        .load(WasmHostConfig::default().with_cpu_time_per_call(Duration::ZERO))
        .unwrap_err();
    assert!(matches!(
        error,
        WasmHostError::InvalidConfig {
            setting: "with_cpu_time_per_call",
            ..
        }
    ));
}
