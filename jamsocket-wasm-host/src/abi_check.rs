//! Load-time checks of a module's exports and imports against `jamsocket::abi`.

use crate::guest_limiter::GuestLimiter;
use crate::imports::WASI_MODULE;
use crate::memory_image::InitialImage;
use crate::{WasmHostConfig, WasmHostError};
use jamsocket::abi::{exports, imports, IMPORT_MODULE};
use wasmtime::{Engine, ExternType, FuncType, Linker, Module, Store, ValType};

/// Checks that `jamsocket_abi_version` is exported as `() -> i32`; it is called before the
/// rest is checked, so a module built for another ABI gets a version error.
pub(crate) fn check_version_export(module: &Module, name: &str) -> Result<(), WasmHostError> {
    check_function_export(module, name, exports::ABI_VERSION, 0, 1)
}

/// Calls `jamsocket_abi_version` on a throwaway instance whose imports all trap, with the
/// configured memory limit and a deadline of about one call's CPU budget. Also returns that
/// fresh instance's memory as it was before the call: the module's initial image, which memory
/// images are taken against.
///
/// This runs synchronously (no host function blocks), so it is safe on any thread.
pub(crate) fn read_abi_version(
    engine: &Engine,
    module: &Module,
    name: &str,
    config: &WasmHostConfig,
) -> Result<(u32, InitialImage), WasmHostError> {
    // Trap stubs only cover function imports; report any other import precisely first.
    if module
        .imports()
        .any(|import| !matches!(import.ty(), ExternType::Func(_)))
    {
        check_imports(module, name)?;
    }
    let version_check = |source: wasmtime::Error| WasmHostError::AbiVersionCheck {
        module: name.to_string(),
        source: WasmHostError::boxed(source),
    };
    let mut linker = Linker::new(engine);
    linker
        .define_unknown_imports_as_traps(module)
        .map_err(version_check)?;
    let mut store = Store::new(engine, GuestLimiter::new(config.memory_limit()));
    store.limiter(|limiter| limiter);
    store.epoch_deadline_trap();
    let slice = config.time_slice().as_nanos().max(1);
    let ticks = config.cpu_time_per_call().as_nanos().div_ceil(slice) + 1;
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    let instance = match linker.instantiate(&mut store, module) {
        Ok(instance) => instance,
        Err(source) => {
            // A mistyped import is the likelier explanation; name it if so.
            check_imports(module, name)?;
            return Err(WasmHostError::Instantiate {
                module: name.to_string(),
                max_memory_bytes: config.memory_limit(),
                source: WasmHostError::boxed(source),
            });
        }
    };
    let initial = instance
        .get_memory(&mut store, exports::MEMORY)
        .map(|memory| InitialImage::of(memory.data(&store)))
        .unwrap_or_default();
    let version = instance
        .get_typed_func::<(), u32>(&mut store, exports::ABI_VERSION)
        .and_then(|version| version.call(&mut store, ()))
        .map_err(version_check)?;
    Ok((version, initial))
}

/// Checks every export the ABI requires: the functions of `exports::FUNCTIONS` with their
/// `i32` signatures, and a 32-bit, unshared `memory`.
pub(crate) fn check_exports(module: &Module, name: &str) -> Result<(), WasmHostError> {
    for (export, params, results) in exports::FUNCTIONS {
        check_function_export(module, name, export, params, results)?;
    }
    match module.get_export(exports::MEMORY) {
        None => Err(WasmHostError::MissingExport {
            module: name.to_string(),
            export: exports::MEMORY,
        }),
        Some(ExternType::Memory(memory)) if !memory.is_64() && !memory.is_shared() => Ok(()),
        Some(other) => Err(WasmHostError::ExportSignature {
            module: name.to_string(),
            export: exports::MEMORY,
            expected: "a 32-bit, unshared memory".to_string(),
            found: describe(&other),
        }),
    }
}

/// Which optional exports a module has (their signatures checked).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OptionalExports {
    /// `jamsocket_snapshot`
    pub(crate) snapshot: bool,
    /// `jamsocket_restore`
    pub(crate) restore: bool,
    /// `jamsocket_request`
    pub(crate) request: bool,
}

/// Checks the signature of each optional export of `exports::OPTIONAL_FUNCTIONS` the module
/// has, and says which it has.
pub(crate) fn check_optional_exports(
    module: &Module,
    name: &str,
) -> Result<OptionalExports, WasmHostError> {
    let mut found = OptionalExports::default();
    for (export, params, results) in exports::OPTIONAL_FUNCTIONS {
        let Some(ty) = module.get_export(export) else {
            continue;
        };
        let matches = |types: &mut dyn ExactSizeIterator<Item = ValType>, expected: &[&str]| {
            types.len() == expected.len() && types.zip(expected).all(|(ty, e)| ty.to_string() == *e)
        };
        match &ty {
            ExternType::Func(func)
                if matches(&mut func.params(), params) && matches(&mut func.results(), results) => {
            }
            other => {
                return Err(WasmHostError::ExportSignature {
                    module: name.to_string(),
                    export,
                    expected: format!(
                        "a function ({}) -> ({})",
                        params.join(", "),
                        results.join(", ")
                    ),
                    found: describe(other),
                })
            }
        }
        match export {
            exports::SNAPSHOT => found.snapshot = true,
            exports::RESTORE => found.restore = true,
            exports::REQUEST => found.request = true,
            _ => {}
        }
    }
    Ok(found)
}

fn check_function_export(
    module: &Module,
    name: &str,
    export: &'static str,
    params: usize,
    results: usize,
) -> Result<(), WasmHostError> {
    let found = module
        .get_export(export)
        .ok_or_else(|| WasmHostError::MissingExport {
            module: name.to_string(),
            export,
        })?;
    match &found {
        ExternType::Func(func) if is_i32_signature(func, params, results) => Ok(()),
        other => Err(WasmHostError::ExportSignature {
            module: name.to_string(),
            export,
            expected: signature(params, results),
            found: describe(other),
        }),
    }
}

/// Checks the module's imports: `jamsocket` functions must be those of `imports::FUNCTIONS`
/// with their signatures; other imports must come from WASI preview 1 (whose names the linker
/// checks).
pub(crate) fn check_imports(module: &Module, name: &str) -> Result<(), WasmHostError> {
    for import in module.imports() {
        let unknown = || WasmHostError::UnknownImport {
            module: name.to_string(),
            import_module: import.module().to_string(),
            name: import.name().to_string(),
        };
        match import.module() {
            IMPORT_MODULE => {
                let (_, params, results) = imports::FUNCTIONS
                    .iter()
                    .find(|(known, ..)| *known == import.name())
                    .ok_or_else(unknown)?;
                let ty = import.ty();
                match &ty {
                    ExternType::Func(func) if is_i32_signature(func, *params, *results) => {}
                    other => {
                        return Err(WasmHostError::ImportSignature {
                            module: name.to_string(),
                            import_module: import.module().to_string(),
                            name: import.name().to_string(),
                            expected: signature(*params, *results),
                            found: describe(other),
                        })
                    }
                }
            }
            WASI_MODULE => {}
            _ => return Err(unknown()),
        }
    }
    Ok(())
}

/// Whether `func` takes `params` and returns `results` values, all `i32`.
pub(crate) fn is_i32_signature(func: &FuncType, params: usize, results: usize) -> bool {
    let all_i32 = |mut types: Box<dyn ExactSizeIterator<Item = ValType> + '_>, count| {
        types.len() == count && types.all(|ty| matches!(ty, ValType::I32))
    };
    all_i32(Box::new(func.params()), params) && all_i32(Box::new(func.results()), results)
}

/// The text of an all-`i32` function signature, e.g. `a function (i32, i32) -> ()`.
fn signature(params: usize, results: usize) -> String {
    let list = |n| vec!["i32"; n].join(", ");
    format!("a function ({}) -> ({})", list(params), list(results))
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(func) => {
            let list = |types: Vec<String>| types.join(", ");
            format!(
                "a function ({}) -> ({})",
                list(func.params().map(|t| t.to_string()).collect()),
                list(func.results().map(|t| t.to_string()).collect()),
            )
        }
        ExternType::Memory(memory) => format!(
            "a {}{} memory",
            if memory.is_shared() { "shared " } else { "" },
            if memory.is_64() { "64-bit" } else { "32-bit" },
        ),
        ExternType::Global(_) => "a global".to_string(),
        ExternType::Table(_) => "a table".to_string(),
        ExternType::Tag(_) => "a tag".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_read_like_wat() {
        assert_eq!(signature(3, 0), "a function (i32, i32, i32) -> ()");
        assert_eq!(signature(0, 1), "a function () -> (i32)");
    }
}
