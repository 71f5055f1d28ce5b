//! The filter-wide settings: size limits, the verified-token cache, path
//! normalisation.

use crate::config::{
    AmbiguousPath, LimitsConfig, NonNormalPath, PathNormalizationConfig, TokenCacheConfig,
};
use crate::limits::Limits;
use crate::path::PathRules;

use super::defaults as d;
use super::errors::Problems;

/// The verified-token cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_entries: d::TOKEN_CACHE_ENTRIES,
            max_bytes: d::TOKEN_CACHE_BYTES,
        }
    }
}

pub fn limits(c: Option<&LimitsConfig>, problems: &mut Problems) -> Limits {
    let defaults = Limits::default();
    let Some(c) = c else { return defaults };
    let mut pick = |field: &str, v: Option<usize>, default: usize, (lo, hi): (usize, usize)| {
        let v = v.unwrap_or(default);
        if v < lo || v > hi {
            problems.refuse(
                format!("limits.{field}"),
                format!("must be between {lo} and {hi}"),
            );
            return default;
        }
        v
    };
    Limits {
        max_token_bytes: pick(
            "max_token_bytes",
            c.max_token_bytes,
            defaults.max_token_bytes,
            d::MAX_TOKEN_BYTES_RANGE,
        ),
        max_header_bytes: pick(
            "max_header_bytes",
            c.max_header_bytes,
            defaults.max_header_bytes,
            d::MAX_HEADER_BYTES_RANGE,
        ),
        max_json_depth: pick(
            "max_json_depth",
            c.max_json_depth,
            defaults.max_json_depth,
            d::MAX_JSON_DEPTH_RANGE,
        ),
        max_jwks_bytes: pick(
            "max_jwks_bytes",
            c.max_jwks_bytes,
            defaults.max_jwks_bytes,
            d::MAX_JWKS_BYTES_RANGE,
        ),
        max_jwks_keys: pick(
            "max_jwks_keys",
            c.max_jwks_keys,
            defaults.max_jwks_keys,
            d::MAX_JWKS_KEYS_RANGE,
        ),
    }
}

pub fn token_cache(c: Option<&TokenCacheConfig>, problems: &mut Problems) -> CacheSettings {
    let defaults = CacheSettings::default();
    let Some(c) = c else { return defaults };
    let max_entries = c.max_entries.unwrap_or(defaults.max_entries);
    if max_entries > d::MAX_TOKEN_CACHE_ENTRIES {
        problems.refuse(
            "token_cache.max_entries",
            format!("must be at most {}", d::MAX_TOKEN_CACHE_ENTRIES),
        );
    }
    let max_bytes = c.max_bytes.unwrap_or(defaults.max_bytes);
    if max_bytes > d::MAX_TOKEN_CACHE_BYTES {
        problems.refuse("token_cache.max_bytes", "must be at most 1 GiB");
    }
    CacheSettings {
        max_entries,
        max_bytes,
    }
}

pub fn paths(c: Option<&PathNormalizationConfig>) -> PathRules {
    let defaults = PathRules::DEFAULT;
    let Some(c) = c else { return defaults };
    PathRules {
        rewrite: c
            .non_normal
            .map_or(defaults.rewrite, |n| n == NonNormalPath::Rewrite),
        merge_slashes: c.merge_slashes.unwrap_or(defaults.merge_slashes),
        allow_ambiguous: c
            .ambiguous
            .map_or(defaults.allow_ambiguous, |a| a == AmbiguousPath::Allow),
    }
}
