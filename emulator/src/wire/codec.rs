//! Value boundaries in AMQP-encoded bytes, with a nesting limit.
//!
//! Every byte string from a client passes through [`value_len`] before any decoder sees it: it
//! proves the bytes hold complete, well-formed values and caps nesting, so a hostile frame can
//! neither make a decoder read past its end nor recurse the stack away.

/// Deepest nesting of described/list/map/array values accepted from a client.
pub const MAX_DEPTH: usize = 48;

/// Array elements that take no bytes (null, true, false, uint 0, ulong 0, the empty list) are
/// not bounded by the bytes present: a 10-byte array can claim 2^32 - 1 of them, and a 48-byte
/// frame made a decoder loop for seconds. One value may hold at most as many of them as it has
/// bytes, and never more than this, across all its arrays. With the other elements taking at
/// least a byte each, a decoder of a value that passed [`value_len`] builds at most two values
/// per byte: decoding work is proportional to the input.
pub const MAX_ZERO_WIDTH_ELEMENTS: usize = 4096;

/// Why bytes are not a well-formed AMQP value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes end in the middle of a value.
    #[error("truncated AMQP value")]
    Truncated,
    /// An unknown format code.
    #[error("invalid AMQP format code 0x{0:02x}")]
    BadFormatCode(u8),
    /// Values nested deeper than [`MAX_DEPTH`].
    #[error("AMQP value nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A value that is well-formed but not what the protocol requires here.
    #[error("unexpected AMQP value: {0}")]
    Unexpected(&'static str),
}

fn read_u8(bytes: &[u8], at: usize) -> Result<usize, CodecError> {
    bytes
        .get(at)
        .map(|b| usize::from(*b))
        .ok_or(CodecError::Truncated)
}

fn read_u32(bytes: &[u8], at: usize) -> Result<usize, CodecError> {
    let slice = bytes.get(at..at + 4).ok_or(CodecError::Truncated)?;
    let mut buf = [0u8; 4];
    buf.copy_from_slice(slice);
    usize::try_from(u32::from_be_bytes(buf)).map_err(|_| CodecError::Truncated)
}

/// Length in bytes of the one value at the start of `bytes` (constructor included).
pub fn value_len(bytes: &[u8]) -> Result<usize, CodecError> {
    let mut zero_width = 0;
    let len = value_len_at(bytes, 0, &mut zero_width)?;
    if zero_width > len {
        return Err(CodecError::Unexpected(
            "more zero-width array elements than the value has bytes",
        ));
    }
    Ok(len)
}

fn value_len_at(bytes: &[u8], depth: usize, zw: &mut usize) -> Result<usize, CodecError> {
    if depth > MAX_DEPTH {
        return Err(CodecError::TooDeep);
    }
    let code = *bytes.first().ok_or(CodecError::Truncated)?;
    if code == 0x00 {
        let descriptor = value_len_at(bytes.get(1..).ok_or(CodecError::Truncated)?, depth + 1, zw)?;
        let rest = bytes.get(1 + descriptor..).ok_or(CodecError::Truncated)?;
        let value = value_len_at(rest, depth + 1, zw)?;
        return Ok(1 + descriptor + value);
    }
    let body = body_len(code, &bytes[1..], depth, zw)?;
    Ok(1 + body)
}

/// Length of a value's body (after its constructor byte).
fn body_len(code: u8, bytes: &[u8], depth: usize, zw: &mut usize) -> Result<usize, CodecError> {
    let fixed = |n: usize| {
        if bytes.len() >= n {
            Ok(n)
        } else {
            Err(CodecError::Truncated)
        }
    };
    match code {
        0x40..=0x45 => Ok(0),
        0x50..=0x56 => fixed(1),
        0x60 | 0x61 => fixed(2),
        0x70..=0x74 => fixed(4),
        0x80..=0x84 => fixed(8),
        0x94 | 0x98 => fixed(16),
        0xa0 | 0xa1 | 0xa3 => {
            let n = read_u8(bytes, 0)?;
            fixed(1 + n)
        }
        0xb0 | 0xb1 | 0xb3 => {
            let n = read_u32(bytes, 0)?;
            fixed(4usize.saturating_add(n))
        }
        0xc0 | 0xc1 => {
            let size = read_u8(bytes, 0)?;
            let count = read_u8(bytes, 1)?;
            compound(bytes, (1, size), (1, count), code == 0xc1, depth, zw)
        }
        0xd0 | 0xd1 => {
            let size = read_u32(bytes, 0)?;
            let count = read_u32(bytes, 4)?;
            compound(bytes, (4, size), (4, count), code == 0xd1, depth, zw)
        }
        0xe0 => {
            let size = read_u8(bytes, 0)?;
            let count = read_u8(bytes, 1)?;
            array(bytes, (1, size), 2, count, depth, zw)
        }
        0xf0 => {
            let size = read_u32(bytes, 0)?;
            let count = read_u32(bytes, 4)?;
            array(bytes, (4, size), 8, count, depth, zw)
        }
        other => Err(CodecError::BadFormatCode(other)),
    }
}

/// A list or map: `size` counts the bytes after the size field; elements follow the count.
fn compound(
    bytes: &[u8],
    (size_width, size): (usize, usize),
    (count_width, count): (usize, usize),
    is_map: bool,
    depth: usize,
    zw: &mut usize,
) -> Result<usize, CodecError> {
    let total = size_width.saturating_add(size);
    let region = bytes.get(..total).ok_or(CodecError::Truncated)?;
    if is_map && !count.is_multiple_of(2) {
        return Err(CodecError::Unexpected("map with an odd element count"));
    }
    let mut at = size_width + count_width;
    for _ in 0..count {
        let rest = region.get(at..).ok_or(CodecError::Truncated)?;
        at += value_len_at(rest, depth + 1, zw)?;
    }
    if at != total {
        return Err(CodecError::Unexpected(
            "compound size does not match its elements",
        ));
    }
    Ok(total)
}

/// An array: one element constructor, then `count` bodies without constructors.
fn array(
    bytes: &[u8],
    (size_width, size): (usize, usize),
    header: usize,
    count: usize,
    depth: usize,
    zw: &mut usize,
) -> Result<usize, CodecError> {
    let total = size_width.saturating_add(size);
    let region = bytes.get(..total).ok_or(CodecError::Truncated)?;
    let mut at = header;
    let mut code = read_u8(region, at)?;
    at += 1;
    if code == 0 {
        // Described element type: a descriptor value then the element constructor.
        let rest = region.get(at..).ok_or(CodecError::Truncated)?;
        at += value_len_at(rest, depth + 1, zw)?;
        code = read_u8(region, at)?;
        at += 1;
    }
    let element = u8::try_from(code).map_err(|_| CodecError::BadFormatCode(0xff))?;
    match fixed_width(element) {
        // Work bounded by the bytes present: fixed-width bodies are counted, not walked.
        Some(0) => {
            *zw = zw.saturating_add(count);
            if *zw > MAX_ZERO_WIDTH_ELEMENTS {
                return Err(CodecError::Unexpected(
                    "too many zero-width array elements in one value",
                ));
            }
        }
        Some(width) => {
            at = count
                .checked_mul(width)
                .and_then(|n| n.checked_add(at))
                .ok_or(CodecError::Truncated)?;
            if at > region.len() {
                return Err(CodecError::Truncated);
            }
        }
        // Variable-width bodies take at least one byte each: the walk ends with the bytes.
        None => {
            for _ in 0..count {
                let rest = region.get(at..).ok_or(CodecError::Truncated)?;
                at += body_len(element, rest, depth + 1, zw)?;
            }
        }
    }
    if at != total {
        return Err(CodecError::Unexpected("array size does not match its elements"));
    }
    Ok(total)
}

/// The body width of a fixed-width format code, `None` for variable-width ones.
fn fixed_width(code: u8) -> Option<usize> {
    match code {
        0x40..=0x45 => Some(0),
        0x50..=0x56 => Some(1),
        0x60 | 0x61 => Some(2),
        0x70..=0x74 => Some(4),
        0x80..=0x84 => Some(8),
        0x94 | 0x98 => Some(16),
        _ => None,
    }
}

/// The numeric descriptor of the described value at the start of `bytes`, if it has one.
pub fn descriptor_code(bytes: &[u8]) -> Option<u64> {
    if bytes.first() != Some(&0x00) {
        return None;
    }
    match *bytes.get(1)? {
        0x44 => Some(0),
        0x53 => bytes.get(2).map(|b| u64::from(*b)),
        0x80 => {
            let slice = bytes.get(2..10)?;
            let mut buf = [0u8; 8];
            buf.copy_from_slice(slice);
            Some(u64::from_be_bytes(buf))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_of_simple_values() {
        assert_eq!(value_len(&[0x40]), Ok(1));
        assert_eq!(value_len(&[0x52, 7]), Ok(2));
        assert_eq!(value_len(&[0xa1, 2, b'h', b'i', 0xff]), Ok(4));
        assert_eq!(value_len(&[0xc0, 3, 2, 0x41, 0x42]), Ok(5));
        assert_eq!(value_len(&[0x00, 0x53, 0x10, 0x45]), Ok(4));
        assert_eq!(value_len(&[0xe0, 4, 2, 0x51, 1, 2]), Ok(6));
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        assert_eq!(value_len(&[]), Err(CodecError::Truncated));
        assert_eq!(value_len(&[0xa1, 5, b'h']), Err(CodecError::Truncated));
        assert_eq!(value_len(&[0xff]), Err(CodecError::BadFormatCode(0xff)));
        assert!(value_len(&[0xc0, 2, 2, 0x41]).is_err());
        assert!(value_len(&[0xd0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]).is_err());
        // 10 000 nested described values must not overflow the stack.
        let deep = vec![0x00u8; 10_000];
        assert_eq!(value_len(&deep), Err(CodecError::TooDeep));
        let lists: Vec<u8> = std::iter::repeat_n([0xc0u8, 0xff, 1], 1000).flatten().collect();
        assert!(value_len(&lists).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x1234_5678_u32;
        for _ in 0..20_000 {
            let mut buf = [0u8; 24];
            for b in &mut buf {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *b = (seed & 0xff) as u8;
            }
            let _ = value_len(&buf);
        }
    }

    #[test]
    fn arrays_cost_work_bounded_by_their_bytes() {
        // 2^32 - 1 nulls in 10 bytes: refused at once, not walked (it took ~8 s before).
        let nulls = [0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40];
        assert!(matches!(value_len(&nulls), Err(CodecError::Unexpected(_))));
        // A few zero-width elements are fine; so are fixed-width ones counted by multiplication.
        assert_eq!(value_len(&[0xe0, 2, 3, 0x40]), Ok(4));
        // More than the value has bytes is not.
        assert!(matches!(
            value_len(&[0xe0, 2, 5, 0x40]),
            Err(CodecError::Unexpected(_))
        ));
        assert_eq!(value_len(&[0xe0, 10, 2, 0x70, 0, 0, 0, 1, 0, 0, 0, 2]), Ok(12));
        // A count the bytes cannot hold is truncated, whatever the width.
        assert_eq!(
            value_len(&[0xf0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0x70, 0, 0, 0, 1]),
            Err(CodecError::Truncated)
        );
        assert!(value_len(&[0xe0, 3, 200, 0xa1, 1, b'x']).is_err());
    }

    #[test]
    fn zero_width_elements_are_capped_per_value_not_per_array() {
        // A list of 100 arrays of 4000 nulls each: 400 000 values in ~700 bytes.
        let array = [0xf0u8, 0, 0, 0, 5, 0, 0, 0x0f, 0xa0, 0x40];
        let mut list = vec![0xd0u8];
        let body: Vec<u8> = std::iter::repeat_n(array, 100).flatten().collect();
        list.extend(u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        list.extend(100u32.to_be_bytes());
        list.extend(&body);
        assert!(matches!(value_len(&list), Err(CodecError::Unexpected(_))));
        // Nor may one array alone claim more elements than its value has bytes.
        assert!(matches!(value_len(&array), Err(CodecError::Unexpected(_))));
        // Inside a value large enough, a few thousand are fine.
        let mut padded = vec![0xd0u8];
        let mut body = array.to_vec();
        body.extend([0xb0, 0, 0, 0x10, 0]);
        body.extend(vec![b'x'; 0x1000]);
        padded.extend(u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        padded.extend(2u32.to_be_bytes());
        padded.extend(&body);
        assert_eq!(value_len(&padded), Ok(padded.len()));
    }

    #[test]
    fn descriptor_codes() {
        assert_eq!(descriptor_code(&[0x00, 0x53, 0x75]), Some(0x75));
        assert_eq!(
            descriptor_code(&[0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x72]),
            Some(0x72)
        );
        assert_eq!(descriptor_code(&[0x53, 0x75]), None);
    }
}
