//! Percent-encoding (RFC 3986 §2.1), read in one place: the escape at a
//! position, and query-parameter values decoded as HTML forms encode them.

/// The value of one hex digit.
pub fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(b.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(b.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

/// The byte the escape `%XX` at `at` stands for; `None` when there is no
/// well-formed escape there.
pub fn escape_at(s: &[u8], at: usize) -> Option<u8> {
    if s.get(at) != Some(&b'%') {
        return None;
    }
    let hi = hex_value(*s.get(at.checked_add(1)?)?)?;
    let lo = hex_value(*s.get(at.checked_add(2)?)?)?;
    Some(hi.wrapping_shl(4) | lo)
}

/// A query-parameter name or value as forms encode them: every escape
/// decoded, `+` a space; a broken escape is kept as it is.
pub fn decode_form(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0usize;
    while let Some(&b) = s.get(i) {
        match escape_at(s, i) {
            Some(c) => {
                out.push(c);
                i = i.saturating_add(3);
            }
            None => {
                out.push(if b == b'+' { b' ' } else { b });
                i = i.saturating_add(1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_at(b"a%2fb", 1), Some(b'/'));
        assert_eq!(escape_at(b"%7E", 0), Some(b'~'));
        assert_eq!(escape_at(b"%7", 0), None);
        assert_eq!(escape_at(b"%zz", 0), None);
        assert_eq!(escape_at(b"x", 0), None);
        assert_eq!(decode_form(b"a%20b+c%2"), b"a b c%2");
    }
}
