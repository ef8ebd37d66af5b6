//! Reading a frame's header before its payload has arrived, so that a frame announcing more
//! than the message limit is refused after its header alone (RFC 6455 §5.2).

/// The longest frame header a client sends: 2 bytes, a 64-bit length, a 4-byte mask.
pub(crate) const MAX_HEADER_BYTES: usize = 14;

/// Most payload bytes of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// What a frame header says about its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Continuation (0), text (1) or binary (2); control frames are not reported.
    pub opcode: u8,
    /// The announced payload length.
    pub payload_len: u64,
}

/// Why a header is refused before its payload is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// A control frame announcing more than 125 bytes.
    ControlTooLong(u64),
}

/// The header at the start of `buf`, once enough of it has arrived. Control frames are checked
/// here (`Err` if one announces more than 125 bytes) and otherwise reported as `None`: their
/// payload is small and the frame codec reads it. Everything else about the frame (reserved
/// bits, masking, opcodes) is checked by the codec.
pub(crate) fn peek(buf: &[u8]) -> Result<Option<FrameHeader>, HeaderError> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let opcode = first & 0x0F;
    let payload_len = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(bytes) => u64::from(u16::from_be_bytes([bytes[0], bytes[1]])),
            None => return Ok(None),
        },
        127 => match buf
            .get(2..10)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        {
            Some(bytes) => u64::from_be_bytes(bytes),
            None => return Ok(None),
        },
        len => u64::from(len),
    };
    if opcode & 0x08 != 0 {
        if payload_len > MAX_CONTROL_PAYLOAD {
            return Err(HeaderError::ControlTooLong(payload_len));
        }
        return Ok(None);
    }
    Ok(Some(FrameHeader {
        opcode,
        payload_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lengths_are_read_from_the_second_byte() {
        assert_eq!(
            peek(&[0x81, 0x85]),
            Ok(Some(FrameHeader {
                opcode: 1,
                payload_len: 5
            }))
        );
    }

    #[test]
    fn extended_lengths_wait_for_their_bytes() {
        assert_eq!(peek(&[0x82]), Ok(None));
        assert_eq!(peek(&[0x82, 0xFE, 0x01]), Ok(None));
        assert_eq!(
            peek(&[0x82, 0xFE, 0x01, 0x00])
                .unwrap()
                .unwrap()
                .payload_len,
            256
        );
        let mut tib = vec![0x02, 0xFF];
        tib.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(peek(&tib[..9]), Ok(None));
        assert_eq!(peek(&tib).unwrap().unwrap().payload_len, 1 << 40);
        assert_eq!(peek(&tib).unwrap().unwrap().opcode, 2);
    }

    #[test]
    fn control_frames_longer_than_125_bytes_are_refused_from_their_header() {
        assert_eq!(peek(&[0x89, 0x80 | 125]), Ok(None));
        assert_eq!(
            peek(&[0x89, 0x80 | 126, 0x00, 0x7E]),
            Err(HeaderError::ControlTooLong(126))
        );
        let mut ping = vec![0x89, 0xFF];
        ping.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(peek(&ping), Err(HeaderError::ControlTooLong(u64::MAX)));
    }
}
