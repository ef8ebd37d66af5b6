//! Memory images: a room saved as its guest's whole linear memory plus its exported mutable
//! globals, for guests that keep no snapshot of their own. Only the same module (same hash) can
//! take one back.
//!
//! Capturing is one copy of the memory into the snapshot. Restoring writes back only the pages
//! that differ from the fresh instance's memory: instances start from the pooling allocator's
//! copy-on-write image, and every page written becomes private to the instance, so writing
//! identical (or zero) pages would make a restored room cost more memory than a fresh one.
//! Pages that are zero both in the image and in a fresh instance (known from the load-time
//! instance, [`InitialPages`]) are not even read, so they are not faulted in.

use crate::snapshot_format::{encode_memory, GlobalValue, PAGE};
use wasmtime::{AsContextMut, ExternType, Global, Memory, Module, Mutability, Val, ValType};

/// A zero page, to compare with.
static ZERO_PAGE: [u8; PAGE] = [0; PAGE];

/// Which pages of a fresh instance's memory are zero: those past the module's data segments,
/// and pages within them left zero. Pages past the initial memory (grown later) are zero too.
///
/// Read from the throwaway instance the module is checked with at load time; a fresh room's
/// instance starts from the same image. (A module whose start function fills memory
/// differently in each instance would break this; Rust guests have no start function.)
#[derive(Debug, Default)]
pub(crate) struct InitialPages {
    nonzero: Vec<bool>,
}

impl InitialPages {
    pub(crate) fn of(memory: &[u8]) -> Self {
        InitialPages {
            nonzero: memory
                .chunks(PAGE)
                .map(|page| page != &ZERO_PAGE[..page.len()])
                .collect(),
        }
    }

    fn is_zero(&self, page: usize) -> bool {
        !self.nonzero.get(page).copied().unwrap_or(false)
    }
}

/// What a memory image of a module holds besides its memory: the module's exported mutable
/// globals, by name. Worked out once, when the module is loaded.
#[derive(Debug)]
pub(crate) struct ImageLayout {
    globals: Vec<(String, ValType)>,
    /// Why memory images of this module cannot be taken, if they cannot.
    unsupported: Option<String>,
    initial: InitialPages,
}

impl ImageLayout {
    pub(crate) fn of(module: &Module, initial: InitialPages) -> Self {
        let mut globals = Vec::new();
        let mut unsupported = None;
        for export in module.exports() {
            let ExternType::Global(global) = export.ty() else {
                continue;
            };
            if global.mutability() != Mutability::Var {
                continue;
            }
            let ty = global.content().clone();
            if !is_number(&ty) {
                unsupported.get_or_insert_with(|| {
                    format!(
                        "the module exports mutable global `{}` of type {ty}, which a memory \
                         image cannot hold",
                        export.name()
                    )
                });
            }
            globals.push((export.name().to_string(), ty));
        }
        ImageLayout {
            globals,
            unsupported,
            initial,
        }
    }

    /// The names of the exported mutable globals, in the order the room resolves them.
    pub(crate) fn global_names(&self) -> impl Iterator<Item = &str> {
        self.globals.iter().map(|(name, _)| name.as_str())
    }

    /// Why memory images of this module cannot be taken, if they cannot.
    pub(crate) fn unsupported(&self) -> Option<&str> {
        self.unsupported.as_deref()
    }

    /// Checks an image's globals and size against this module and `memory_limit`, before an
    /// instance is created for it.
    pub(crate) fn check(
        &self,
        globals: &[(&str, GlobalValue)],
        memory_len: usize,
        memory_limit: usize,
    ) -> Result<(), String> {
        if memory_len > memory_limit {
            return Err(format!(
                "its memory is {memory_len} bytes, over the limit of {memory_limit} bytes per room"
            ));
        }
        for (name, value) in globals {
            match self.globals.iter().find(|(known, _)| known == name) {
                None => {
                    return Err(format!(
                        "it sets global `{name}`, which the module does not export as mutable"
                    ))
                }
                Some((_, ty)) if !same_type(ty, value) => {
                    return Err(format!(
                        "it sets global `{name}` to {value:?}, but the global is of type {ty}"
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some((missing, _)) = self
            .globals
            .iter()
            .find(|(known, _)| !globals.iter().any(|(name, _)| name == known))
        {
            return Err(format!("it has no value for global `{missing}`"));
        }
        Ok(())
    }
}

fn is_number(ty: &ValType) -> bool {
    matches!(
        ty,
        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 | ValType::V128
    )
}

fn same_type(ty: &ValType, value: &GlobalValue) -> bool {
    matches!(
        (ty, value),
        (ValType::I32, GlobalValue::I32(_))
            | (ValType::I64, GlobalValue::I64(_))
            | (ValType::F32, GlobalValue::F32(_))
            | (ValType::F64, GlobalValue::F64(_))
            | (ValType::V128, GlobalValue::V128(_))
    )
}

/// The image of a room: its memory and the values of `globals` (names from
/// [`ImageLayout::global_names`], in order), encoded by [`encode_memory`].
pub(crate) fn capture(
    mut store: impl AsContextMut,
    memory: Memory,
    globals: &[(&str, Global)],
    module_hash: &[u8; 32],
) -> Result<Vec<u8>, String> {
    let mut values = Vec::with_capacity(globals.len());
    for (name, global) in globals {
        let value = match global.get(&mut store) {
            Val::I32(v) => GlobalValue::I32(v),
            Val::I64(v) => GlobalValue::I64(v),
            Val::F32(bits) => GlobalValue::F32(bits),
            Val::F64(bits) => GlobalValue::F64(bits),
            Val::V128(v) => GlobalValue::V128(v.as_u128()),
            other => return Err(format!("global `{name}` holds {other:?}, not a number")),
        };
        values.push((*name, value));
    }
    Ok(encode_memory(module_hash, &values, memory.data(&store)))
}

/// Puts an image into a fresh instance: grows its memory to the image's size, writes back the
/// pages that differ, and sets the globals (checked by [`ImageLayout::check`]). Returns how many
/// pages were written.
pub(crate) fn restore(
    mut store: impl AsContextMut,
    layout: &ImageLayout,
    memory: Memory,
    globals: &[(&str, Global)],
    image: &[u8],
    image_globals: &[(&str, GlobalValue)],
) -> Result<usize, String> {
    let current = memory.data_size(&store);
    if image.len() < current {
        return Err(format!(
            "its memory is {} bytes, smaller than the module's initial {current} bytes",
            image.len()
        ));
    }
    let page_size = usize::try_from(memory.page_size(&store)).unwrap_or(PAGE);
    let grow_by = (image.len() - current).div_ceil(page_size) as u64;
    if grow_by > 0 {
        memory.grow(&mut store, grow_by).map_err(|error| {
            format!(
                "the module's memory cannot grow to {} bytes: {error:#}",
                image.len()
            )
        })?;
    }
    let written = write_back(memory.data_mut(&mut store), image, &layout.initial);
    for (name, value) in image_globals {
        let (_, global) = globals
            .iter()
            .find(|(known, _)| known == name)
            .ok_or_else(|| format!("the instance has no global `{name}`"))?;
        let value = match *value {
            GlobalValue::I32(v) => Val::I32(v),
            GlobalValue::I64(v) => Val::I64(v),
            GlobalValue::F32(bits) => Val::F32(bits),
            GlobalValue::F64(bits) => Val::F64(bits),
            GlobalValue::V128(v) => Val::V128(v.into()),
        };
        global
            .set(&mut store, value)
            .map_err(|error| format!("global `{name}` cannot be set: {error:#}"))?;
    }
    Ok(written)
}

/// Copies the pages of `image` that differ from `memory` (a fresh instance's, of the same
/// length, whole pages), leaving identical pages untouched (not even written), and returns how
/// many it copied. Pages zero in the image and, per `initial`, in the fresh memory are skipped
/// without reading the memory.
pub(crate) fn write_back(memory: &mut [u8], image: &[u8], initial: &InitialPages) -> usize {
    debug_assert_eq!(memory.len(), image.len());
    let mut written = 0;
    for (index, (page, saved)) in memory.chunks_mut(PAGE).zip(image.chunks(PAGE)).enumerate() {
        if initial.is_zero(index) && saved == &ZERO_PAGE[..saved.len()] {
            continue;
        }
        if page != saved {
            page.copy_from_slice(saved);
            written += 1;
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differing_pages_are_written() {
        // A fresh instance: 3 initial pages, data in page 1, and a page grown since.
        let mut fresh = vec![0u8; 3 * PAGE];
        fresh[PAGE + 3] = 9;
        let initial = InitialPages::of(&fresh);
        fresh.resize(4 * PAGE, 0);

        let mut memory = fresh.clone();
        let mut image = fresh.clone();
        assert_eq!(write_back(&mut memory, &image, &initial), 0);

        image[10] = 1;
        image[3 * PAGE + PAGE - 1] = 2;
        assert_eq!(write_back(&mut memory, &image, &initial), 2);
        assert_eq!(memory, image);

        // The data page, zeroed by the guest, is written; a page already equal is not.
        image[PAGE + 3] = 0;
        let mut memory = fresh.clone();
        memory[10] = 1;
        assert_eq!(write_back(&mut memory, &image, &initial), 2);
        assert_eq!(memory, image);
    }

    #[test]
    fn initial_pages_know_which_pages_are_zero() {
        let mut memory = vec![0u8; 3 * PAGE];
        memory[2 * PAGE] = 1;
        let initial = InitialPages::of(&memory);
        assert!(initial.is_zero(0) && initial.is_zero(1) && !initial.is_zero(2));
        assert!(initial.is_zero(3), "grown pages start zero");
    }

    #[test]
    fn the_layout_lists_mutable_globals_and_checks_images() {
        let engine = wasmtime::Engine::default();
        let wat = r#"(module
            (global (export "count") (mut i32) (i32.const 0))
            (global (export "fixed") i32 (i32.const 1))
            (global (export "wide") (mut i64) (i64.const 0)))"#;
        let module = Module::new(&engine, wat).unwrap();
        let layout = ImageLayout::of(&module, InitialPages::default());
        assert_eq!(layout.global_names().collect::<Vec<_>>(), ["count", "wide"]);
        assert!(layout.unsupported().is_none());

        let good = [
            ("count", GlobalValue::I32(4)),
            ("wide", GlobalValue::I64(5)),
        ];
        assert!(layout.check(&good, PAGE, PAGE).is_ok());
        let error =
            |globals: &[(&str, GlobalValue)], len| layout.check(globals, len, PAGE).unwrap_err();
        assert!(error(&good, 2 * PAGE).contains("over the limit of 65536 bytes"));
        assert!(error(&[("fixed", GlobalValue::I32(1))], PAGE).contains("`fixed`"));
        assert!(error(&[("count", GlobalValue::I64(1))], PAGE).contains("of type i32"));
        assert!(error(&good[..1], PAGE).contains("no value for global `wide`"));

        let refs = Module::new(
            &engine,
            r#"(module (global (export "r") (mut externref) (ref.null extern)))"#,
        )
        .unwrap();
        let unsupported = ImageLayout::of(&refs, InitialPages::default());
        assert!(unsupported.unsupported().unwrap().contains("`r`"));
    }
}
