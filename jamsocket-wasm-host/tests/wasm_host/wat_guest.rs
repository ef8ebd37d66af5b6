//! Hand-written guests, for testing what real guests should never do.

use crate::common::test_config;
use jamsocket::abi::{imports, ABI_VERSION, IMPORT_MODULE};
use jamsocket_wasm_host::{WasmHostConfig, WasmHostError, WasmHostFactory};

/// A hand-written guest implementing the ABI, with replaceable parts. By default it reports
/// `jamsocket::abi::ABI_VERSION`, imports every function of `jamsocket::abi::imports` (each
/// callable as `$<name>`, e.g. `$send_message`), answers every text message with `ok` to the
/// sender, and does nothing else.
pub struct WatGuest {
    imports: Vec<String>,
    memory: String,
    functions: Vec<(&'static str, String, String)>,
    extra: Vec<String>,
}

impl Default for WatGuest {
    fn default() -> Self {
        let version = format!("i32.const {ABI_VERSION}");
        let functions = [
            ("jamsocket_abi_version", "(result i32)", version.as_str()),
            (
                "jamsocket_buffer",
                "(param $len i32) (result i32)",
                "i32.const 1024",
            ),
            (
                "jamsocket_initialize",
                "(param $ptr i32) (param $len i32)",
                "",
            ),
            ("jamsocket_connect", "(param $client i32)", ""),
            ("jamsocket_disconnect", "(param $client i32)", ""),
            (
                "jamsocket_message",
                "(param $client i32) (param $ptr i32) (param $len i32)",
                "(call $send_message (local.get $client) (i32.const 16) (i32.const 2))",
            ),
            (
                "jamsocket_binary",
                "(param $client i32) (param $ptr i32) (param $len i32)",
                "",
            ),
            ("jamsocket_timer", "", ""),
        ]
        .map(|(name, signature, body)| (name, signature.to_string(), body.to_string()))
        .to_vec();
        WatGuest {
            imports: abi_imports(),
            memory: r#"(memory (export "memory") 1)"#.to_string(),
            functions,
            extra: vec![r#"(data (i32.const 16) "ok")"#.to_string()],
        }
    }
}

/// The WAT import of every function of `jamsocket::abi::imports`, with its signature from
/// `imports::FUNCTIONS`, named after the import.
fn abi_imports() -> Vec<String> {
    let i32s = |kind: &str, count: usize| match count {
        0 => String::new(),
        _ => format!(" ({kind}{})", " i32".repeat(count)),
    };
    imports::FUNCTIONS
        .iter()
        .map(|&(name, params, results)| {
            format!(
                r#"(import "{IMPORT_MODULE}" "{name}" (func ${name}{}{}))"#,
                i32s("param", params),
                i32s("result", results)
            )
        })
        .collect()
}

impl WatGuest {
    /// Replaces the body of `export`.
    pub fn body(mut self, export: &str, body: &str) -> Self {
        self.function_mut(export).2 = body.to_string();
        self
    }

    /// Replaces the signature of `export`.
    pub fn signature(mut self, export: &str, signature: &str) -> Self {
        self.function_mut(export).1 = signature.to_string();
        self
    }

    /// Leaves out `export`.
    pub fn without(mut self, export: &str) -> Self {
        self.functions.retain(|(name, ..)| *name != export);
        self
    }

    /// Leaves out the import of `jamsocket` function `name`.
    pub fn without_import(mut self, name: &str) -> Self {
        let import = format!(r#"(import "{IMPORT_MODULE}" "{name}" "#);
        let before = self.imports.len();
        self.imports.retain(|text| !text.starts_with(&import));
        assert_eq!(self.imports.len() + 1, before, "no import {name}");
        self
    }

    /// Adds an import (WAT text); imports must come before everything else.
    pub fn import(mut self, import: &str) -> Self {
        self.imports.push(import.to_string());
        self
    }

    /// Replaces the memory declaration.
    pub fn memory(mut self, memory: &str) -> Self {
        self.memory = memory.to_string();
        self
    }

    /// Adds module fields (data segments, helper functions).
    pub fn extra(mut self, field: &str) -> Self {
        self.extra.push(field.to_string());
        self
    }

    fn function_mut(&mut self, export: &str) -> &mut (&'static str, String, String) {
        self.functions
            .iter_mut()
            .find(|(name, ..)| *name == export)
            .unwrap_or_else(|| panic!("no export {export}"))
    }

    /// The module's WAT text.
    pub fn wat(&self) -> String {
        let functions = self.functions.iter().map(|(name, signature, body)| {
            format!("(func (export \"{name}\") {signature} {body})")
        });
        let fields: Vec<String> = self
            .imports
            .iter()
            .cloned()
            .chain([self.memory.clone()])
            .chain(functions)
            .chain(self.extra.iter().cloned())
            .collect();
        format!("(module\n  {}\n)", fields.join("\n  "))
    }

    /// The module's binary.
    pub fn wasm(&self) -> Vec<u8> {
        wat::parse_str(self.wat()).unwrap_or_else(|err| panic!("{err}\n{}", self.wat()))
    }

    /// Loads the module with `config`.
    pub fn load(&self, config: WasmHostConfig) -> Result<WasmHostFactory, WasmHostError> {
        WasmHostFactory::from_bytes(&self.wasm(), config)
    }

    /// Loads the module with [`test_config`], which must succeed.
    pub fn factory(&self) -> WasmHostFactory {
        self.load(test_config())
            .unwrap_or_else(|err| panic!("loading {}: {err}", self.wat()))
    }
}
