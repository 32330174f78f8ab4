//! The Confluent wire format: `0x00`, a big-endian `u32` schema id, the datum.

pub const MAGIC_BYTE: u8 = 0;
const HEADER_LEN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("record is {0} bytes, shorter than the 5-byte wire header")]
    TooShort(usize),
    #[error("record starts with byte {0:#04x}, not the magic byte 0x00")]
    BadMagic(u8),
}

/// Prefixes `datum` with the wire header for `schema_id`.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    out.extend_from_slice(&header(schema_id));
    out.extend_from_slice(datum);
    out
}

/// The wire header for `schema_id`: the magic byte, then the id big-endian.
pub(crate) fn header(schema_id: u32) -> [u8; HEADER_LEN] {
    let id = schema_id.to_be_bytes();
    [MAGIC_BYTE, id[0], id[1], id[2], id[3]]
}

/// Splits a record into its schema id and datum, checking the header.
pub fn unframe(record: &[u8]) -> Result<(u32, &[u8]), FramingError> {
    if record.len() < HEADER_LEN {
        return Err(FramingError::TooShort(record.len()));
    }
    if record[0] != MAGIC_BYTE {
        return Err(FramingError::BadMagic(record[0]));
    }
    let id = u32::from_be_bytes([record[1], record[2], record[3], record[4]]);
    Ok((id, &record[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let framed = frame(258, b"abc");
        assert_eq!(framed, [0, 0, 0, 1, 2, b'a', b'b', b'c']);
        assert_eq!(unframe(&framed), Ok((258, &b"abc"[..])));
        assert_eq!(unframe(&[0, 0, 0, 1, 2]), Ok((258, &b""[..])));
        assert_eq!(unframe(&[]), Err(FramingError::TooShort(0)));
        assert_eq!(unframe(&[0, 0, 0, 1]), Err(FramingError::TooShort(4)));
        assert_eq!(unframe(&[1, 0, 0, 0, 1, 9]), Err(FramingError::BadMagic(1)));
    }
}
