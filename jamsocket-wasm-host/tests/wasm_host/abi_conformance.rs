//! Each built example's real imports and exports, compared with `jamsocket::abi`: the required
//! exports, and the optional snapshot pair that `#[jamsocket_wasm]` always emits.

use crate::common::{example_wasm, EXAMPLES};
use jamsocket::abi::{exports, imports, IMPORT_MODULE};
use std::collections::BTreeSet;
use wasmtime::{Engine, ExternType, FuncType, Module, Mutability, ValType};

/// A function's parameter and result types as wasm type names.
type Signature = (Vec<String>, Vec<String>);

fn type_names(func: &FuncType) -> Signature {
    (
        func.params().map(|t| t.to_string()).collect(),
        func.results().map(|t| t.to_string()).collect(),
    )
}

fn i32_counts(func: &FuncType) -> (usize, usize) {
    assert!(func.params().all(|t| matches!(t, ValType::I32)), "{func}");
    assert!(func.results().all(|t| matches!(t, ValType::I32)), "{func}");
    (func.params().len(), func.results().len())
}

#[test]
fn examples_match_the_abi() {
    let engine = Engine::default();
    let expected_exports: BTreeSet<(String, usize, usize)> = exports::FUNCTIONS
        .iter()
        .map(|(name, params, results)| (name.to_string(), *params, *results))
        .collect();
    let import_arity = |name: &str| {
        imports::FUNCTIONS
            .iter()
            .find(|(known, ..)| *known == name)
            .map(|&(_, params, results)| (params, results))
            .unwrap_or_else(|| panic!("unknown jamsocket import {name}"))
    };
    let optional_exports: BTreeSet<(String, Signature)> = exports::OPTIONAL_FUNCTIONS
        .iter()
        .map(|(name, params, results)| {
            let names = |types: &[&str]| types.iter().map(|t| t.to_string()).collect();
            (name.to_string(), (names(params), names(results)))
        })
        .collect();
    let mut used_imports = BTreeSet::new();

    for example in EXAMPLES {
        let path = example_wasm(example);
        let module = Module::from_file(&engine, &path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));

        let mut function_exports = BTreeSet::new();
        let mut optional = BTreeSet::new();
        let mut memories = 0;
        for export in module.exports() {
            match export.ty() {
                ExternType::Func(func) if export.name().starts_with("jamsocket_") => {
                    let is_optional = exports::OPTIONAL_FUNCTIONS
                        .iter()
                        .any(|(name, ..)| *name == export.name());
                    if is_optional {
                        optional.insert((export.name().to_string(), type_names(&func)));
                    } else {
                        let (params, results) = i32_counts(&func);
                        function_exports.insert((export.name().to_string(), params, results));
                    }
                }
                ExternType::Func(_) => panic!("{example} exports function {}", export.name()),
                ExternType::Memory(memory) => {
                    assert_eq!(export.name(), exports::MEMORY, "{example}");
                    assert!(!memory.is_64() && !memory.is_shared(), "{example}");
                    memories += 1;
                }
                // The linker's `__data_end` / `__heap_base` globals are harmless. None is
                // mutable (the stack pointer is not exported), so a memory image of a Rust
                // guest is its memory alone.
                ExternType::Global(global) => assert_eq!(
                    global.mutability(),
                    Mutability::Const,
                    "{example} exports mutable global {}",
                    export.name()
                ),
                other => panic!("{example} exports {} as {other:?}", export.name()),
            }
        }
        assert_eq!(function_exports, expected_exports, "{example}");
        assert_eq!(optional, optional_exports, "{example}");
        assert_eq!(memories, 1, "{example}");

        for import in module.imports() {
            match import.module() {
                IMPORT_MODULE => {
                    let ExternType::Func(func) = import.ty() else {
                        panic!("{example} imports {} as a non-function", import.name());
                    };
                    assert_eq!(i32_counts(&func), import_arity(import.name()), "{example}");
                    used_imports.insert(import.name().to_string());
                }
                "wasi_snapshot_preview1" => {
                    assert_ne!(import.name(), "poll_oneoff", "{example} sleeps");
                }
                other => panic!("{example} imports from unknown module {other}"),
            }
        }
    }
    // Between them, the examples use every import of the ABI.
    let all: BTreeSet<String> = imports::FUNCTIONS
        .iter()
        .map(|(name, ..)| name.to_string())
        .collect();
    assert_eq!(used_imports, all);
}
