//! Byte strings read eight bytes at a time. A token is scanned and
//! compared with its cache entry on every request; in wasm32 the library's
//! byte-at-a-time `memcmp` and its four-byte `memchr` were a fifth of a
//! cache hit's time in V8 (bench/PROFILE.md). Wasm has 64-bit loads and
//! arithmetic, so whole words are cheap there as natively.

/// Eight bytes as one word (little-endian: the order does not matter to
/// the tests below, only that both sides use the same).
fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().unwrap_or_default())
}

/// `a == b`, a word at a time.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in (&mut wa).zip(&mut wb) {
        diff |= word(x) ^ word(y);
    }
    diff == 0 && wa.remainder() == wb.remainder()
}

/// What one pass over a header's token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Every byte is ASCII.
    pub ascii: bool,
    /// Some byte is a comma (what Envoy joins repeated headers with).
    pub comma: bool,
}

/// Whether `bytes` are all ASCII and whether they hold a comma, in one
/// pass.
pub fn scan(bytes: &[u8]) -> Scan {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    const COMMAS: u64 = 0x2c2c_2c2c_2c2c_2c2c;
    let mut words = bytes.chunks_exact(8);
    let (mut high, mut comma) = (0u64, 0u64);
    for chunk in &mut words {
        let w = word(chunk);
        high |= w;
        // A zero byte of w ^ COMMAS is a comma: the classic "has a zero
        // byte" test, exact as a yes/no for any word.
        let x = w ^ COMMAS;
        comma |= x.wrapping_sub(ONES) & !x & HIGH;
    }
    let rest = words.remainder();
    Scan {
        ascii: high & HIGH == 0 && rest.is_ascii(),
        comma: comma != 0 || rest.contains(&b','),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs around every word boundary, with the bytes that matter (a
    /// comma, 0x80, 0xff, the neighbours of a comma, NUL) at each place.
    fn inputs() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = vec![vec![]];
        for len in 0..40usize {
            let base: Vec<u8> = (0..len).map(|i| b"aZ9-_."[i % 6]).collect();
            out.push(base.clone());
            for at in 0..len {
                for b in [b',', 0x80, 0xff, 0x2b, 0x2d, 0x00, 0xac] {
                    let mut v = base.clone();
                    v[at] = b;
                    out.push(v.clone());
                    if at + 1 < len {
                        v[at + 1] = b',';
                        out.push(v);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn scan_agrees_with_the_definitions() {
        for v in inputs() {
            let got = scan(&v);
            assert_eq!(got.ascii, v.is_ascii(), "{v:?}");
            assert_eq!(got.comma, v.contains(&b','), "{v:?}");
        }
    }

    #[test]
    fn equal_agrees_with_the_definition() {
        let all = inputs();
        for a in all.iter().step_by(7) {
            for b in all.iter().step_by(11) {
                assert_eq!(equal(a, b), a == b, "{a:?} {b:?}");
            }
            assert!(equal(a, a));
            let mut c = a.clone();
            if let Some(last) = c.last_mut() {
                *last ^= 1;
                assert!(!equal(a, &c), "last byte differs: {a:?}");
            }
            if let Some(first) = c.first_mut() {
                *first ^= 0x80;
                assert!(!equal(a, &c), "first byte differs: {a:?}");
            }
        }
    }
}
