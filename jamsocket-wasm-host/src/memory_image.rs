//! Memory images: a room saved as the parts of its guest's linear memory that changed since the
//! instance was created, plus its exported mutable globals, for guests that keep no snapshot of
//! their own. Only the same module (same hash) can take one back.
//!
//! The module's initial memory ([`InitialImage`]: a fresh instance's, read once at load) is
//! the reference. Capturing compares the memory with it chunk by chunk (4 KiB, `==` on slices)
//! and copies only the chunks that differ (past the initial size: that are not zero). Restoring
//! instantiates the module (a copy-on-write image of that same initial memory), grows the
//! memory and writes only the stored chunks: every page written becomes private to the
//! instance, so a restored room costs no more memory than the room that was saved.

use crate::snapshot_format::{encode_memory, Chunks, GlobalValue, CHUNK, PAGE};
use wasmtime::{AsContextMut, ExternType, Global, Memory, Module, Mutability, Val, ValType};

/// A zero chunk, to compare with.
static ZERO_CHUNK: [u8; CHUNK] = [0; CHUNK];

/// The module's initial memory: a fresh instance's, data segments applied, before any export
/// ran. Memory grown later starts zero. Kept sparse (only its non-zero chunks; a Rust guest's
/// is mostly zero stack and heap), once per module, shared by its rooms through the factory.
///
/// Read from the throwaway instance the module is checked with at load time; a fresh room's
/// instance starts from the same image. (A module whose start function fills memory
/// differently in each instance would break this; Rust guests have no start function.)
#[derive(Debug, Default)]
pub(crate) struct InitialImage {
    /// Per chunk of the initial memory: where it is in `data` (counted in chunks), or `None`
    /// for a zero chunk.
    chunks: Vec<Option<u32>>,
    /// The non-zero chunks, in order.
    data: Vec<u8>,
}

impl InitialImage {
    /// The image of `memory` (whole pages).
    pub(crate) fn of(memory: &[u8]) -> Self {
        debug_assert_eq!(memory.len() % CHUNK, 0, "a memory is whole pages");
        let mut chunks = Vec::with_capacity(memory.len() / CHUNK);
        let mut data = Vec::new();
        for chunk in memory.chunks_exact(CHUNK) {
            if chunk == ZERO_CHUNK {
                chunks.push(None);
            } else {
                let stored = u32::try_from(data.len() / CHUNK).expect("< 2^20 chunks");
                chunks.push(Some(stored));
                data.extend_from_slice(chunk);
            }
        }
        InitialImage { chunks, data }
    }

    /// Chunk `index` of the initial memory: zero past its end.
    fn chunk(&self, index: usize) -> &[u8] {
        match self.chunks.get(index) {
            Some(Some(stored)) => {
                let start = *stored as usize * CHUNK;
                &self.data[start..start + CHUNK]
            }
            _ => &ZERO_CHUNK,
        }
    }

    /// The indexes of the chunks of `memory` (whole pages, at least the initial size) that
    /// differ from this image, in order.
    pub(crate) fn changed_chunks(&self, memory: &[u8]) -> Vec<u32> {
        memory
            .chunks_exact(CHUNK)
            .enumerate()
            .filter(|(index, chunk)| *chunk != self.chunk(*index))
            .map(|(index, _)| u32::try_from(index).expect("a 32-bit memory has < 2^20 chunks"))
            .collect()
    }
}

/// What memory images of a module are made of: the module's exported mutable globals, by name,
/// and its initial memory, which the stored chunks differ from. Worked out once, when the
/// module is loaded.
#[derive(Debug)]
pub(crate) struct ImageLayout {
    globals: Vec<(String, ValType)>,
    /// Why memory images of this module cannot be taken, if they cannot.
    unsupported: Option<String>,
    initial: InitialImage,
}

impl ImageLayout {
    pub(crate) fn of(module: &Module, initial: InitialImage) -> Self {
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

/// The image of a room: the chunks of its memory that differ from the module's initial memory
/// and the values of `globals` (names from [`ImageLayout::global_names`], in order), encoded by
/// [`encode_memory`]. Returns the image and how many chunks it holds.
pub(crate) fn capture(
    mut store: impl AsContextMut,
    layout: &ImageLayout,
    memory: Memory,
    globals: &[(&str, Global)],
    module_hash: &[u8; 32],
) -> Result<(Vec<u8>, usize), String> {
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
    let memory = memory.data(&store);
    let changed = layout.initial.changed_chunks(memory);
    let image = encode_memory(module_hash, &values, memory, &changed);
    Ok((image, changed.len()))
}

/// Puts an image into a fresh instance: grows its memory to the image's `pages`, writes the
/// stored chunks, and sets the globals (checked by [`ImageLayout::check`]). Returns how many
/// chunks were written.
pub(crate) fn restore(
    mut store: impl AsContextMut,
    memory: Memory,
    globals: &[(&str, Global)],
    pages: u32,
    chunks: &Chunks<'_>,
    image_globals: &[(&str, GlobalValue)],
) -> Result<usize, String> {
    let size = (pages as usize).saturating_mul(PAGE);
    let current = memory.data_size(&store);
    if size < current {
        return Err(format!(
            "its memory is {size} bytes, smaller than the module's initial {current} bytes"
        ));
    }
    let page_size = usize::try_from(memory.page_size(&store)).unwrap_or(PAGE);
    let grow_by = (size - current).div_ceil(page_size) as u64;
    if grow_by > 0 {
        memory.grow(&mut store, grow_by).map_err(|error| {
            format!("the module's memory cannot grow to {size} bytes: {error:#}")
        })?;
    }
    let grown = memory.data_size(&store);
    if grown != size {
        return Err(format!(
            "the module's memory grew to {grown} bytes, not the image's {size} bytes"
        ));
    }
    let written = write_chunks(memory.data_mut(&mut store), chunks)?;
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

/// Copies the stored chunks into `memory` (a fresh instance's, grown to the image's size),
/// touching nothing else, and returns how many it copied. [`decode`](crate::snapshot_format)
/// checked that every index is inside the image's memory; a memory of another size is an
/// error, not a panic.
fn write_chunks(memory: &mut [u8], chunks: &Chunks<'_>) -> Result<usize, String> {
    let len = memory.len();
    for (index, bytes) in chunks.iter() {
        let start = index * CHUNK;
        let target = memory
            .get_mut(start..start + CHUNK)
            .ok_or_else(|| format!("chunk {index} is outside the instance's {len}-byte memory"))?;
        target.copy_from_slice(bytes);
    }
    Ok(chunks.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot_format::{decode, Body};

    #[test]
    fn the_initial_image_keeps_only_its_non_zero_chunks() {
        let mut memory = vec![0u8; 2 * PAGE];
        memory[3 * CHUNK + 7] = 1;
        memory[2 * PAGE - 1] = 2;
        let initial = InitialImage::of(&memory);
        assert_eq!(initial.data.len(), 2 * CHUNK);
        assert_eq!(initial.chunk(3), &memory[3 * CHUNK..4 * CHUNK]);
        assert_eq!(initial.chunk(31), &memory[31 * CHUNK..]);
        assert_eq!(initial.chunk(0), ZERO_CHUNK);
        assert_eq!(initial.chunk(32), ZERO_CHUNK, "grown memory starts zero");
        assert!(initial.changed_chunks(&memory).is_empty());
    }

    #[test]
    fn only_changed_chunks_are_stored_and_written_back() {
        // A fresh instance: 2 pages, data in chunks 1 and 17.
        let mut fresh = vec![0u8; 2 * PAGE];
        fresh[CHUNK + 3] = 9;
        fresh[17 * CHUNK] = 8;
        let initial = InitialImage::of(&fresh);

        // The room since: chunk 0 written, chunk 17's data zeroed, chunk 5 written and set
        // back, one page grown with its chunk 40 written and the rest left zero.
        let mut live = fresh.clone();
        live[10] = 1;
        live[17 * CHUNK] = 0;
        live[5 * CHUNK] = 4;
        live[5 * CHUNK] = 0;
        live.resize(3 * PAGE, 0);
        live[40 * CHUNK + CHUNK - 1] = 2;
        let changed = initial.changed_chunks(&live);
        assert_eq!(changed, [0, 17, 40]);

        let bytes = encode_memory(&[1; 32], &[], &live, &changed);
        let Body::Memory { pages, chunks, .. } = decode(&bytes).unwrap().body else {
            panic!("a memory image");
        };
        assert_eq!(pages, 3);
        // Restoring: a fresh instance, grown, gets the stored chunks.
        let mut restored = fresh.clone();
        restored.resize(3 * PAGE, 0);
        assert_eq!(write_chunks(&mut restored, &chunks), Ok(3));
        assert!(restored == live);

        // A memory smaller than the image's (never the case after a restore's grow) is an
        // error, not a panic.
        let mut small = fresh.clone();
        let error = write_chunks(&mut small, &chunks).unwrap_err();
        assert!(error.contains("chunk 40 is outside"), "{error}");
    }

    #[test]
    fn the_layout_lists_mutable_globals_and_checks_images() {
        let engine = wasmtime::Engine::default();
        let wat = r#"(module
            (global (export "count") (mut i32) (i32.const 0))
            (global (export "fixed") i32 (i32.const 1))
            (global (export "wide") (mut i64) (i64.const 0)))"#;
        let module = Module::new(&engine, wat).unwrap();
        let layout = ImageLayout::of(&module, InitialImage::default());
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
        let unsupported = ImageLayout::of(&refs, InitialImage::default());
        assert!(unsupported.unsupported().unwrap().contains("`r`"));
    }
}
