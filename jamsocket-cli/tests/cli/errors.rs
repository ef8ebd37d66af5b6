use crate::common::*;

#[test]
fn no_cargo_toml_says_where_to_run() {
    let temp = TempDir::new("empty");
    let output = run(&["dev", temp.0.to_str().unwrap(), "--port", "0"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("no Cargo.toml in"), "{err}");
    assert!(err.contains("jamsocket new"), "{err}");
}

#[test]
fn a_crate_that_is_not_a_cdylib_gets_the_crate_type_hint() {
    let temp = TempDir::new("rlib");
    std::fs::create_dir_all(temp.0.join("src")).unwrap();
    std::fs::write(
        temp.0.join("Cargo.toml"),
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(temp.0.join("src/lib.rs"), "").unwrap();
    let output = run(&["build", temp.0.to_str().unwrap()]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("`plain` builds no WebAssembly module"),
        "{err}"
    );
    assert!(err.contains("crate-type = [\"cdylib\", \"rlib\"]"), "{err}");
}

#[test]
fn a_workspace_with_several_services_names_them() {
    let output = run(&["build", workspace_root().to_str().unwrap()]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("several service crates"), "{err}");
    assert!(
        err.contains("counter-service") && err.contains("echo-server"),
        "{err}"
    );
    assert!(err.contains("--package"), "{err}");
}

#[test]
fn a_port_in_use_is_reported_with_the_next_step() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = workspace_root().join("examples/counter-service");
    let output = run(&["dev", dir.to_str().unwrap(), "--port", &port, "--no-watch"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains(&format!("port {port} is already in use")),
        "{err}"
    );
    assert!(err.contains("--port 0"), "{err}");
}

#[test]
fn a_module_with_another_abi_version_names_both_versions() {
    let temp = TempDir::new("abi");
    let wasm = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (func (export "jamsocket_abi_version") (result i32) i32.const 999)
            (func (export "jamsocket_buffer") (param i32) (result i32) i32.const 0)
            (func (export "jamsocket_initialize") (param i32 i32))
            (func (export "jamsocket_connect") (param i32))
            (func (export "jamsocket_disconnect") (param i32))
            (func (export "jamsocket_message") (param i32 i32 i32))
            (func (export "jamsocket_binary") (param i32 i32 i32))
            (func (export "jamsocket_timer")))"#,
    )
    .unwrap();
    let path = temp.0.join("old.wasm");
    std::fs::write(&path, wasm).unwrap();
    let output = run(&["serve", path.to_str().unwrap(), "--port", "0"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("999"), "{err}");
    assert!(
        err.contains(&jamsocket::abi::ABI_VERSION.to_string()),
        "{err}"
    );
    assert!(err.contains("rebuild the service"), "{err}");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let temp = TempDir::new("notwasm");
    let path = temp.0.join("notes.wasm");
    std::fs::write(&path, "hello").unwrap();
    let output = run(&["serve", path.to_str().unwrap(), "--port", "0"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("cannot load") && err.contains("notes.wasm"),
        "{err}"
    );
}
