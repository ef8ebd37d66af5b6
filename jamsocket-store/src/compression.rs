//! Snapshots are stored as one zstd frame each. The frame's magic number marks the bytes as ours,
//! so garbage is told from a snapshot before anything is allocated for it.

/// zstd level 1. Measured on 1 MiB snapshots (`cargo bench -p jamsocket-store`, best of 100):
/// mostly zeros with 16 random 4 KiB pages take 184 µs to 66 KB at level 1, 220 µs to the same
/// size at levels 2-3; JSON-like text takes 1.7 ms to 157 KB at level 1, 1.9-2.2 ms to
/// 166-173 KB at levels 2-3. Level 1 is the fastest and no larger.
pub(crate) const LEVEL: i32 = 1;

/// A reusable compression context (it keeps its tables between snapshots), made on first use.
pub(crate) struct Compressor(Option<zstd::bulk::Compressor<'static>>);

impl Compressor {
    pub(crate) fn new() -> Self {
        Compressor(None)
    }

    /// One frame holding `raw`, with its size in the header.
    pub(crate) fn compress(&mut self, raw: &[u8]) -> std::io::Result<Vec<u8>> {
        let context = match &mut self.0 {
            Some(context) => context,
            None => self.0.insert(zstd::bulk::Compressor::new(LEVEL)?),
        };
        context.compress(raw)
    }
}

/// Up to this size, a snapshot is decompressed into a buffer of the size its frame header
/// claims; a larger claim is not trusted (a damaged header could claim exabytes) and the frame is
/// streamed into a buffer that grows with what really comes out.
const TRUSTED_CLAIM: u64 = 64 * 1024 * 1024;

/// The snapshot in `stored`, or why it is not one.
pub(crate) fn decompress(stored: &[u8]) -> Result<Vec<u8>, String> {
    match zstd::zstd_safe::get_frame_content_size(stored) {
        Ok(Some(size)) if size <= TRUSTED_CLAIM => {
            zstd::bulk::decompress(stored, size as usize).map_err(|e| e.to_string())
        }
        // Frames without their size (not written by this crate), or very large ones.
        Ok(_) => zstd::stream::decode_all(stored).map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{} bytes that are not a zstd frame (they start with {:02x?})",
            stored.len(),
            &stored[..stored.len().min(8)]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mib_of_mostly_zeros_compresses_to_a_few_kib() {
        let mut raw = vec![0u8; 1024 * 1024];
        // A few non-zero bytes scattered like the fields of a room's state.
        for (i, byte) in raw.iter_mut().enumerate().step_by(4099) {
            *byte = (i % 251) as u8;
        }
        let stored = Compressor::new().compress(&raw).unwrap();
        assert!(stored.len() < 8 * 1024, "{} bytes", stored.len());
        assert_eq!(decompress(&stored).unwrap(), raw);
    }

    #[test]
    fn empty_snapshots_round_trip() {
        let stored = Compressor::new().compress(&[]).unwrap();
        assert_eq!(decompress(&stored).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn garbage_is_refused_with_its_first_bytes() {
        let error = decompress(b"not a snapshot").unwrap_err();
        assert!(
            error.contains("14 bytes that are not a zstd frame"),
            "{error}"
        );
        assert!(decompress(&[]).is_err());
    }

    #[test]
    fn a_header_claiming_exabytes_is_not_believed() {
        // Magic, a header with an 8-byte content size (single segment), the size, then junk.
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        frame.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        frame.extend_from_slice(&[0xff; 16]);
        let claimed = zstd::zstd_safe::get_frame_content_size(&frame);
        assert!(matches!(claimed, Ok(Some(size)) if size == u64::MAX / 2));
        assert!(decompress(&frame).is_err());
    }

    #[test]
    fn a_truncated_frame_is_refused() {
        let raw = vec![7u8; 10_000];
        let stored = Compressor::new().compress(&raw).unwrap();
        assert!(decompress(&stored[..stored.len() - 3]).is_err());
    }
}
