//! Partition-key → partition mapping, exactly as the Event Hubs service does it.
//!
//! The service hashes the key's UTF-8 bytes with Bob Jenkins' lookup3 `hashlittle2` (both seeds
//! 0), folds the two 32-bit results into a signed 16-bit value `(short)(c ^ b)` and picks
//! partition `abs(hash % partition_count)`. Matching it means events sent with a partition key
//! land where a real namespace would put them, so tests that rely on key affinity mean something.

/// The signed 16-bit hash the service computes for a partition key.
pub fn partition_key_hash(key: &str) -> i16 {
    let (c, b) = hashlittle2(key.as_bytes(), 0, 0);
    // Truncation to 16 bits is the algorithm, not an accident.
    (c ^ b) as u16 as i16
}

/// The partition index (0-based) a partition key maps to, for a hub with `partition_count`
/// partitions. Returns 0 when `partition_count` is 0 so callers never divide by zero.
pub fn partition_for_key(key: &str, partition_count: usize) -> usize {
    if partition_count == 0 {
        return 0;
    }
    let hash = i64::from(partition_key_hash(key));
    let count = i64::try_from(partition_count).unwrap_or(i64::MAX);
    // |hash % count| < count, so the conversion back cannot fail.
    usize::try_from((hash % count).abs()).unwrap_or(0)
}

fn word(bytes: &[u8], at: usize) -> u32 {
    let mut buf = [0u8; 4];
    for (i, slot) in buf.iter_mut().enumerate() {
        *slot = bytes.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(buf)
}

/// lookup3 `hashlittle2`: returns `(primary, secondary)` = `(c, b)`.
fn hashlittle2(data: &[u8], seed1: u32, seed2: u32) -> (u32, u32) {
    // lookup3 mixes in the length as a 32-bit value; longer keys wrap, as in C.
    let len = data.len() as u32;
    let mut a = 0xdead_beef_u32.wrapping_add(len).wrapping_add(seed1);
    let mut b = a;
    let mut c = a.wrapping_add(seed2);

    let mut at = 0usize;
    let mut rest = data.len();
    while rest > 12 {
        a = a.wrapping_add(word(data, at));
        b = b.wrapping_add(word(data, at + 4));
        c = c.wrapping_add(word(data, at + 8));
        mix(&mut a, &mut b, &mut c);
        at += 12;
        rest -= 12;
    }
    if rest == 0 {
        return (c, b);
    }
    // The tail (1..=12 bytes): byte i goes into a, b or c (by i / 4) at bit 8 * (i % 4), exactly
    // as the C switch's fall-through cases add them.
    for (i, byte) in data[at..].iter().enumerate() {
        let shifted = u32::from(*byte) << (8 * (i % 4));
        match i / 4 {
            0 => a = a.wrapping_add(shifted),
            1 => b = b.wrapping_add(shifted),
            _ => c = c.wrapping_add(shifted),
        }
    }
    final_mix(&mut a, &mut b, &mut c);
    (c, b)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from the .NET SDK's PartitionResolver tests (the service's own algorithm).
    #[test]
    fn hash_matches_service_vectors() {
        let vectors: [(&str, i16); 5] = [
            ("7", -15263),
            ("131", 30562),
            ("FWfAT", -22341),
            ("$0cb", 26269),
            ("-4189260826195535198", 453),
        ];
        for (key, expected) in vectors {
            assert_eq!(partition_key_hash(key), expected, "key {key:?}");
        }
    }

    #[test]
    fn partition_is_abs_of_remainder() {
        // -15263 % 4 = -3 → 3
        assert_eq!(partition_for_key("7", 4), 3);
        // 30562 % 4 = 2
        assert_eq!(partition_for_key("131", 4), 2);
        assert_eq!(partition_for_key("anything", 1), 0);
        assert_eq!(partition_for_key("anything", 0), 0);
    }

    /// Every tail length 0..=12, the multi-block loop and multi-byte UTF-8, against the values
    /// the official JavaScript SDK (`@azure/event-hubs` 5.12.2, `hashPartitionKey`) computes for
    /// the same keys.
    #[test]
    fn every_tail_length_matches_the_javascript_sdk() {
        let vectors: [(&str, i16); 40] = [
            ("", 0),
            ("a", -16220),
            ("ab", 2093),
            ("abc", -14161),
            ("abcd", 23398),
            ("abcde", 27137),
            ("abcdef", 28810),
            ("abcdefg", -14024),
            ("abcdefgh", 22170),
            ("abcdefghi", -2485),
            ("abcdefghij", -5137),
            ("abcdefghijk", -2676),
            ("abcdefghijkl", -2373),
            ("abcdefghijklm", -31855),
            ("abcdefghijklmn", -23240),
            ("abcdefghijklmno", 10416),
            ("abcdefghijklmnop", -18092),
            ("abcdefghijklmnopq", -15831),
            ("abcdefghijklmnopqr", -19306),
            ("abcdefghijklmnopqrs", -3254),
            ("abcdefghijklmnopqrst", -14347),
            ("abcdefghijklmnopqrstu", -1843),
            ("abcdefghijklmnopqrstuv", 22074),
            ("abcdefghijklmnopqrstuvw", 5975),
            ("abcdefghijklmnopqrstuvwx", 26788),
            ("abcdefghijklmnopqrstuvwxy", -2321),
            ("abcdefghijklmnopqrstuvwxyz", -13397),
            ("abcdefghijklmnopqrstuvwxyz0", -23459),
            ("abcdefghijklmnopqrstuvwxyz01", -2457),
            ("abcdefghijklmnopqrstuvwxyz012", 449),
            ("abcdefghijklmnopqrstuvwxyz0123", -24488),
            ("abcdefghijklmnopqrstuvwxyz01234", -5509),
            ("abcdefghijklmnopqrstuvwxyz012345", -5218),
            ("abcdefghijklmnopqrstuvwxyz0123456", -27179),
            ("abcdefghijklmnopqrstuvwxyz01234567", -28976),
            ("abcdefghijklmnopqrstuvwxyz012345678", -9228),
            ("abcdefghijklmnopqrstuvwxyz0123456789", 22694),
            ("日本語", -23353),
            ("ÄÖÜ-Straße", -26740),
            ("émoji-🦀", 24396),
        ];
        for (key, expected) in vectors {
            assert_eq!(partition_key_hash(key), expected, "key {key:?}");
        }
    }
}
