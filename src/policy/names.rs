//! The names a configuration gives: provider and rule names, HTTP header
//! names and tokens, and the headers the filter must never set.

use super::defaults::MAX_NAME_LEN;
use super::errors::ConfigError;

/// Provider and rule names: letters, digits, `_` and `-`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// RFC 7230 `token` characters (header names, methods, cookie names).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// A header name, lower-cased.
pub fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    if !is_token(name) {
        return Err(ConfigError::new(field, "is not a valid header name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// Headers that carry the request's framing or routing, or the caller's own
/// credentials: never set from a claim, nor as the decision header.
pub const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "authorization",
    "proxy-authorization",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "cookie",
];
