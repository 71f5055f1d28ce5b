//! Size limits, checked before anything is parsed.

use crate::policy::defaults as d;

/// The limits in force; see [`crate::config::LimitsConfig`] for the meaning
/// and [`crate::policy::defaults`] for the defaults and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_token_bytes: usize,
    pub max_header_bytes: usize,
    pub max_json_depth: usize,
    pub max_jwks_bytes: usize,
    pub max_jwks_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: d::MAX_TOKEN_BYTES,
            max_header_bytes: d::MAX_HEADER_BYTES,
            max_json_depth: d::MAX_JSON_DEPTH,
            max_jwks_bytes: d::MAX_JWKS_BYTES,
            max_jwks_keys: d::MAX_JWKS_KEYS,
        }
    }
}
