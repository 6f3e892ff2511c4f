//! Names (namespace, event hub, consumer group, partition id) → safe file names (C1, C11).
//!
//! The store only ever sees names that [`eventhubs_store_core::normalize_name`] accepted and
//! lower-cased (C1). Such a name may still be hostile to a file system: `...`, `.hidden`,
//! `%2e%2e`, `con`, `a:b`, non-ASCII text, 256 bytes. [`file_name`] maps each to one path
//! component that is safe on Linux, macOS and Windows alike:
//!
//! - bytes in `[a-z0-9_-]` stay as they are; `.` stays unless it is the first or last byte;
//!   every other byte (upper case, `%`, `+`, `/`, `\`, `:`, space, NUL, each byte of non-ASCII
//!   text, a leading or trailing `.`) becomes `%` and two lower-case hex digits;
//! - a Windows device name (`con`, `aux.txt`, `com1`, …) gets its first byte escaped too;
//! - an encoding longer than [`MAX_COMPONENT_BYTES`] becomes `+<first bytes of the
//!   encoding>+<sha-256 of the name, hex>`.
//!
//! So every component is printable lower-case ASCII (no case-insensitive file system can merge
//! two of them), never starts with `.` (temp and lock files do, see `layout`), and never is `.`
//! or `..`. Distinct names give distinct components: the escaping is reversible (`%` itself is
//! always escaped), and the hashed form only arises for long names, starts with `+`, which the
//! escaped form never holds, and carries a SHA-256 of the whole name. Records carry their full
//! names, and every read checks that a record's names map back to the path it was found at.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Longest component the store writes, in bytes: 250, so that the temp file `.<name>.tmp`
/// next to a record still fits the usual 255-byte limit of file names.
pub const MAX_COMPONENT_BYTES: usize = 250;

/// How many bytes of the escaped name a hashed component keeps as a readable prefix.
const HASHED_PREFIX_BYTES: usize = 100;

/// Device names Windows reserves in any directory, with or without an extension.
const WINDOWS_DEVICES: [&str; 4] = ["con", "prn", "aux", "nul"];
const WINDOWS_NUMBERED_DEVICES: [&str; 2] = ["com", "lpt"];

/// The safe file name of a (normalised) name. See the module docs for the rules.
pub fn file_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let edge = i == 0 || i + 1 == bytes.len();
        let literal = matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-') || (b == b'.' && !edge);
        let device_start = i == 0 && is_windows_device(name);
        if literal && !device_start {
            out.push(char::from(b));
        } else {
            push_escaped(&mut out, b);
        }
    }
    if out.len() <= MAX_COMPONENT_BYTES {
        return out;
    }
    hashed(name, &out)
}

/// Whether `component` is a name [`file_name`] can produce for some name (used to tell records
/// from anything else found in a directory).
pub fn is_record_file_name(component: &str) -> bool {
    !component.is_empty()
        && component.len() <= MAX_COMPONENT_BYTES
        && !component.starts_with('.')
        && component
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'%' | b'+'))
}

fn push_escaped(out: &mut String, b: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "%{b:02x}");
}

fn is_windows_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_lowercase();
    if WINDOWS_DEVICES.contains(&stem.as_str()) {
        return true;
    }
    WINDOWS_NUMBERED_DEVICES.iter().any(|prefix| {
        stem.len() == prefix.len() + 1
            && stem.starts_with(prefix)
            && stem.as_bytes()[prefix.len()].is_ascii_digit()
    })
}

fn hashed(name: &str, escaped: &str) -> String {
    // Cut the readable prefix before an escape sequence, never inside one.
    let mut cut = HASHED_PREFIX_BYTES.min(escaped.len());
    while let Some(pos) = escaped[..cut].rfind('%') {
        if pos + 3 <= cut {
            break;
        }
        cut = pos;
    }
    let digest = Sha256::digest(name.as_bytes());
    let mut out = String::with_capacity(cut + 2 + 64);
    out.push('+');
    out.push_str(&escaped[..cut]);
    out.push('+');
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn corpus() -> Vec<String> {
        let mut names: Vec<String> = [
            "0",
            "1",
            "10",
            "a",
            "ab",
            "a.b",
            "...",
            ".hidden",
            "name.",
            "%2e%2e",
            "%2f",
            "%252e",
            "con",
            "con.txt",
            "aux.txt",
            "nul",
            "com1",
            "lpt9",
            "com",
            "console",
            "{tag}",
            "a*b?c",
            "a:b",
            "a b",
            "a#b&c=d",
            "-1",
            "'quote\"",
            "日本語",
            "äöü-straße",
            "émoji-🦀",
            "+x+",
            "$default",
            "ns.servicebus.windows.net",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        names.push("x".repeat(256));
        names.push("x".repeat(255));
        names.push("x".repeat(250));
        names.push("x".repeat(251));
        names.push("日".repeat(85));
        names.push(format!("{}a", "日".repeat(84)));
        names.push("%".repeat(84));
        names.push("%".repeat(85));
        names
    }

    #[test]
    fn c11_components_are_safe_on_every_file_system() {
        for name in corpus() {
            let c = file_name(&name);
            assert!(is_record_file_name(&c), "{name:?} -> {c:?}");
            assert!(c != "." && c != "..", "{name:?}");
            assert!(
                !c.ends_with('.'),
                "{name:?} -> {c:?}: Windows drops a trailing dot"
            );
            let stem = c.split('.').next().unwrap();
            assert!(
                !is_windows_device(stem),
                "{name:?} -> {c:?} is a Windows device name"
            );
        }
    }

    #[test]
    fn c11_distinct_names_never_collide() {
        let mut seen: HashMap<String, String> = HashMap::new();
        for name in corpus() {
            if let Some(other) = seen.insert(file_name(&name), name.clone()) {
                panic!("{name:?} and {other:?} map to one file name");
            }
        }
        // Upper-case bytes are escaped, so even an unnormalised name cannot merge with its
        // lower-cased form on a case-insensitive file system.
        assert_ne!(file_name("A").to_ascii_lowercase(), file_name("a"));
    }

    #[test]
    fn readable_names_stay_readable() {
        assert_eq!(file_name("0"), "0");
        assert_eq!(file_name("$default"), "%24default");
        assert_eq!(
            file_name("myns.servicebus.windows.net"),
            "myns.servicebus.windows.net"
        );
        assert_eq!(file_name(".."), "%2e%2e");
        assert_eq!(file_name("..."), "%2e.%2e");
        assert_eq!(file_name("con"), "%63on");
        assert_eq!(file_name("aux.txt"), "%61ux.txt");
        assert_eq!(file_name("com1"), "%63om1");
        assert_eq!(file_name("console"), "console");
        assert_eq!(file_name("a/b"), "a%2fb");
        assert_eq!(file_name("a\0b"), "a%00b");
    }

    #[test]
    fn c11_long_names_are_hashed_not_truncated() {
        let long = "x".repeat(256);
        let c = file_name(&long);
        assert!(c.starts_with('+') && c.len() <= MAX_COMPONENT_BYTES, "{c}");
        assert_ne!(c, file_name(&"x".repeat(255)));
        assert_eq!(file_name(&"x".repeat(250)), "x".repeat(250));
        // The readable prefix never ends inside an escape sequence.
        let c = file_name(&"日".repeat(85));
        let prefix = c[1..].split('+').next().unwrap();
        assert_eq!(prefix.len() % 3, 0, "{c}");
        assert!(prefix.len() <= HASHED_PREFIX_BYTES);
    }
}
