//! Every default and bound of the plugin configuration, named once. The
//! compiler ([`super`]) applies them, the JSON Schema carries them
//! (`default`, `minimum`, `maximum` in `schema/jwt-policy.schema.json`, from
//! the attributes in `src/config.rs`), and `tests/readme.rs` checks that the
//! README's configuration reference states the same values.

/// `realm` of the `WWW-Authenticate` challenge.
pub const REALM: &str = "api";
/// `decision_header`.
pub const DECISION_HEADER: &str = "x-jwt-policy-decision";
/// `use_host_crypto`.
pub const USE_HOST_CRYPTO: bool = true;
/// `route_check`.
pub const ROUTE_CHECK: bool = false;
/// `bypass_cors_preflight`.
pub const BYPASS_CORS_PREFLIGHT: bool = false;
/// `decision_to_filter_state`.
pub const DECISION_TO_FILTER_STATE: bool = false;

/// Longest provider and rule name.
pub const MAX_NAME_LEN: usize = 64;

/// `clock_skew_s`, and its bound.
pub const CLOCK_SKEW_S: u64 = 60;
pub const MAX_CLOCK_SKEW_S: u64 = 3600;
/// `require_exp`.
pub const REQUIRE_EXP: bool = true;
/// `require_low_s`.
pub const REQUIRE_LOW_S: bool = false;
/// `forward_token`.
pub const FORWARD_TOKEN: bool = true;

/// `remote_jwks.timeout_ms` (1 ..= max).
pub const TIMEOUT_MS: u64 = 5000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// `remote_jwks.cache_ttl_s` (1 ..= max).
pub const CACHE_TTL_S: u64 = 3600;
pub const MAX_CACHE_TTL_S: u64 = 30 * 86_400;
/// `remote_jwks.max_stale_s` (1 ..= max).
pub const MAX_STALE_S: u64 = 86_400;
pub const MAX_MAX_STALE_S: u64 = 30 * 86_400;
/// `remote_jwks.refetch_cooldown_s` (1 ..= max).
pub const REFETCH_COOLDOWN_S: u64 = 30;
pub const MAX_REFETCH_COOLDOWN_S: u64 = 86_400;

/// `token_cache.max_entries` (0 ..= max; 0 turns the cache off).
pub const TOKEN_CACHE_ENTRIES: usize = 1000;
pub const MAX_TOKEN_CACHE_ENTRIES: usize = 1_000_000;
/// `token_cache.max_bytes` (0 ..= max).
pub const TOKEN_CACHE_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_TOKEN_CACHE_BYTES: usize = 1 << 30;

/// `limits.max_token_bytes`: Cognito access tokens are about 1 KiB, ID
/// tokens 1–2 KiB; 8 KiB leaves room for fat custom claims while keeping
/// the work per request bounded.
pub const MAX_TOKEN_BYTES: usize = 8192;
pub const MAX_TOKEN_BYTES_RANGE: (usize, usize) = (256, 65_536);
/// `limits.max_header_bytes` (the decoded JOSE header).
pub const MAX_HEADER_BYTES: usize = 1024;
pub const MAX_HEADER_BYTES_RANGE: (usize, usize) = (64, 8192);
/// `limits.max_json_depth`.
pub const MAX_JSON_DEPTH: usize = 16;
pub const MAX_JSON_DEPTH_RANGE: (usize, usize) = (2, 64);
/// `limits.max_jwks_bytes`.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
pub const MAX_JWKS_BYTES_RANGE: (usize, usize) = (1024, 4 << 20);
/// `limits.max_jwks_keys`.
pub const MAX_JWKS_KEYS: usize = 64;
pub const MAX_JWKS_KEYS_RANGE: (usize, usize) = (1, 1024);
