//! Small text helpers for log lines and error descriptions, which must stay
//! short and must never carry a whole token or control characters.

/// At most `max` characters of `s`, with `…` appended when cut, and control
/// characters replaced by `?`.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_add(3)));
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// Like [`clip`] for bytes that may not be UTF-8.
pub fn clip_bytes(b: &[u8], max: usize) -> String {
    clip(&String::from_utf8_lossy(b), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_and_sanitises() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("a\nb\r", 10), "a?b?");
        assert_eq!(clip_bytes(b"a\xffb", 10), "a\u{fffd}b");
    }
}
