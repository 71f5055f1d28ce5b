//! Where a provider's keys come from: a JWKS in the configuration, or one
//! fetched from the issuer through an Envoy cluster.

use serde_json::Value;

use crate::config::RemoteJwksConfig;
use crate::jwks::{self, KeySet};
use crate::limits::Limits;

use super::defaults as d;
use super::errors::{ConfigError, Problems, join_field};

/// Where a provider's keys come from.
#[derive(Debug)]
pub enum KeySource {
    Local(KeySet),
    Remote(RemoteJwks),
    /// HMAC only: the shared secret is the key.
    SecretOnly,
}

/// A remote JWKS endpoint, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub cluster: String,
    pub uri: String,
    /// `host[:port]` of `uri`, sent as `:authority`.
    pub authority: String,
    /// Path and query of `uri`, sent as `:path`.
    pub path: String,
    pub timeout_ms: u64,
    pub cache_ttl_s: u64,
    pub max_stale_s: u64,
    pub refetch_cooldown_s: u64,
}

/// A JWKS given in the configuration (an object, or a string holding one):
/// every key must be usable.
pub fn local_jwks(field: &str, doc: &Value, limits: &Limits) -> Result<KeySet, ConfigError> {
    let owned;
    let object = match doc {
        Value::Object(map) => map,
        Value::String(text) => {
            owned = crate::json::parse_object(text.as_bytes(), limits.max_json_depth)
                .map_err(|e| ConfigError::new(field, format!("the string is {e}")))?;
            &owned
        }
        _ => {
            return Err(ConfigError::new(
                field,
                "must be a JWKS object or a string holding one",
            ));
        }
    };
    let parsed = jwks::parse_jwks_object(object, limits)
        .map_err(|e| ConfigError::new(join_field(field, &e.field), e.message))?;
    if let Some(e) = parsed.skipped.first() {
        return Err(ConfigError::new(
            join_field(field, &e.field),
            e.message.clone(),
        ));
    }
    if parsed.keys.is_empty() {
        return Err(ConfigError::new(join_field(field, "keys"), "holds no key"));
    }
    Ok(parsed.keys)
}

/// A `remote_jwks` block; every problem is recorded.
pub fn remote_jwks(
    field: &str,
    r: &RemoteJwksConfig,
    problems: &mut Problems,
) -> Option<RemoteJwks> {
    let at = |f: &str| format!("{field}.{f}");
    let before = problems.len();
    if r.cluster.trim().is_empty() {
        problems.refuse(at("cluster"), "must name an Envoy cluster");
    }
    let split = split_uri(&r.uri);
    if split.is_none() {
        problems.refuse(
            at("uri"),
            "must be an absolute http(s) URL such as https://host/path/jwks.json",
        );
    }
    let mut bounded = |name: &str, v: Option<u64>, default: u64, max: u64| {
        let v = v.unwrap_or(default);
        if v == 0 || v > max {
            problems.refuse(at(name), format!("must be between 1 and {max}"));
        }
        v
    };
    let timeout_ms = bounded("timeout_ms", r.timeout_ms, d::TIMEOUT_MS, d::MAX_TIMEOUT_MS);
    let cache_ttl_s = bounded(
        "cache_ttl_s",
        r.cache_ttl_s,
        d::CACHE_TTL_S,
        d::MAX_CACHE_TTL_S,
    );
    let max_stale_s = bounded(
        "max_stale_s",
        r.max_stale_s,
        d::MAX_STALE_S,
        d::MAX_MAX_STALE_S,
    );
    let refetch_cooldown_s = bounded(
        "refetch_cooldown_s",
        r.refetch_cooldown_s,
        d::REFETCH_COOLDOWN_S,
        d::MAX_REFETCH_COOLDOWN_S,
    );
    let (authority, path) = split?;
    (problems.len() == before).then(|| RemoteJwks {
        cluster: r.cluster.clone(),
        uri: r.uri.clone(),
        authority,
        path,
        timeout_ms,
        cache_ttl_s,
        max_stale_s,
        refetch_cooldown_s,
    })
}

/// `(authority, path-and-query)` of an absolute http(s) URL.
pub fn split_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    if rest.bytes().any(|b| b <= b' ' || b >= 0x7f) || rest.contains('#') {
        return None;
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().map_or(true, |n| n == 0)) {
        return None;
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Some((authority.to_owned(), path))
}
