//! Size limits, checked before anything is parsed.

/// The limits in force; see [`crate::config::LimitsConfig`] for the meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_token_bytes: usize,
    pub max_header_bytes: usize,
    pub max_json_depth: usize,
    pub max_jwks_bytes: usize,
    pub max_jwks_keys: usize,
}

impl Limits {
    /// Cognito access tokens are about 1 KiB, ID tokens 1–2 KiB; 8 KiB leaves
    /// room for fat custom claims while keeping the work per request bounded.
    pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 1024;
    pub const DEFAULT_MAX_JSON_DEPTH: usize = 16;
    pub const DEFAULT_MAX_JWKS_BYTES: usize = 256 * 1024;
    pub const DEFAULT_MAX_JWKS_KEYS: usize = 64;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: Self::DEFAULT_MAX_TOKEN_BYTES,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            max_json_depth: Self::DEFAULT_MAX_JSON_DEPTH,
            max_jwks_bytes: Self::DEFAULT_MAX_JWKS_BYTES,
            max_jwks_keys: Self::DEFAULT_MAX_JWKS_KEYS,
        }
    }
}
