//! The compiled policy: the plugin configuration checked field by field and
//! turned into what the filter evaluates per request. Every refusal names
//! the offending field (`providers.cognito.remote_jwks.uri`).

use std::fmt;

use serde_json::Value;

use crate::algorithm::{Algorithm, AlgorithmSet};
use crate::b64;
use crate::claims::ClaimRule;
use crate::config::{
    AmbiguousPath, ClaimConfig, LimitsConfig, Mode, NonNormalPath, PathNormalizationConfig,
    PluginConfig, ProviderConfig, RemoteJwksConfig, RuleConfig, TokenCacheConfig, Unmatched,
};
use crate::extract::TokenLocation;
use crate::jwks::{self, KeySet};
use crate::limits::Limits;
use crate::path::{self, PathRules};
use crate::rules::Matcher;
use crate::text::clip;

/// Index of a provider in [`Policy::providers`].
pub type ProviderId = usize;
/// Index of a rule in [`Policy::rules`].
pub type RuleId = usize;

/// A refused configuration: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn refuse<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        message: message.into(),
    })
}

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

/// A claim copied into a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub claim: String,
    /// Lower-case header name.
    pub header: String,
}

/// A token issuer, checked.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub token_use: Option<String>,
    pub algorithms: AlgorithmSet,
    pub keys: KeySource,
    pub secret: Option<Vec<u8>>,
    pub clock_skew_s: u64,
    pub require_exp: bool,
    pub require_low_s: bool,
    pub locations: Vec<TokenLocation>,
    pub claims: Vec<ClaimRule>,
    pub claims_to_headers: Vec<ClaimHeader>,
    pub forward_token: bool,
}

/// What a rule demands.
#[derive(Debug)]
pub enum Access {
    Anonymous,
    Token(TokenRequirement),
}

/// A token from `provider` holding the scopes and claims listed.
#[derive(Debug)]
pub struct TokenRequirement {
    pub provider: ProviderId,
    pub any_scopes: Vec<String>,
    pub all_scopes: Vec<String>,
    pub claims: Vec<ClaimRule>,
    /// The `scope` attribute of a 403 challenge: every scope named.
    pub scope_hint: Option<String>,
}

/// A rule, checked.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub matcher: Matcher,
    pub access: Access,
    pub mode: Mode,
}

/// The verified-token cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_entries: 1000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The whole compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    pub unmatched: Unmatched,
    pub mode: Mode,
    pub realm: String,
    pub decision_header: String,
    pub token_cache: CacheSettings,
    pub limits: Limits,
    /// Headers this filter owns: removed from every request before anything
    /// else, so a client can never forge them.
    pub managed_headers: Vec<String>,
    /// Whether any rule matches on the route name (else it is never read).
    pub uses_route_names: bool,
    /// Whether host-native signature verification may be used.
    pub use_host_crypto: bool,
    /// How request paths are normalised, and what the upstream gets.
    pub paths: PathRules,
    /// The filter runs a second time later in the chain and decides
    /// route-name rules again on the route the request is forwarded on.
    pub route_check: bool,
}

/// Default `WWW-Authenticate` realm.
pub const DEFAULT_REALM: &str = "api";
/// Default report-mode header.
pub const DEFAULT_DECISION_HEADER: &str = "x-jwt-policy-decision";

impl Policy {
    /// Parses and checks a plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Policy, ConfigError> {
        let config = parse_config(bytes)?;
        Policy::from_config(&config)
    }

    /// Checks a parsed plugin configuration.
    pub fn from_config(config: &PluginConfig) -> Result<Policy, ConfigError> {
        let limits = compile_limits(config.limits.as_ref())?;
        let mut providers = Vec::with_capacity(config.providers.len());
        for (name, p) in &config.providers {
            providers.push(compile_provider(name, p, &limits)?);
        }
        let paths = compile_paths(config.path_normalization.as_ref());
        let route_check = config.route_check.unwrap_or(false);
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, r) in config.rules.iter().enumerate() {
            rules.push(compile_rule(i, r, &providers, config.mode, &paths)?);
        }
        if !route_check && let Some(i) = rules.iter().position(|r| r.matcher.uses_route()) {
            return refuse(
                format!("rules[{i}].match.route"),
                "a route-name rule needs \"route_check\": true and the filter's second pass in the \
                 HTTP filter chain: the route Envoy forwards on is selected again after the \
                 filter edits headers (README: Route-name rules)",
            );
        }
        for (i, r) in rules.iter().enumerate() {
            if rules
                .get(..i)
                .unwrap_or_default()
                .iter()
                .any(|earlier| earlier.name == r.name)
            {
                return refuse(format!("rules[{i}].name"), "duplicate rule name");
            }
        }
        let realm = match &config.realm {
            None => DEFAULT_REALM.to_owned(),
            Some(r)
                if r.is_empty()
                    || !r
                        .bytes()
                        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') =>
            {
                return refuse(
                    "realm",
                    "must be printable ASCII without quotes or backslashes",
                );
            }
            Some(r) => r.clone(),
        };
        let decision_header = match &config.decision_header {
            None => DEFAULT_DECISION_HEADER.to_owned(),
            Some(h) => header_name("decision_header", h)?,
        };
        // Like a claim header: the filter removes it from every request and
        // sets it in report mode, so it must not be a header that frames or
        // routes the request, carries credentials, or holds the token.
        let token_location = providers.iter().any(|p| {
            p.locations.iter().any(
                |l| matches!(l, TokenLocation::Header { name, .. } if *name == decision_header),
            )
        });
        if RESERVED_HEADERS.contains(&decision_header.as_str()) || token_location {
            return refuse(
                "decision_header",
                "is a header the filter must not set (framing, credentials or a token location)",
            );
        }
        let token_cache = compile_cache(config.token_cache.as_ref())?;

        let mut managed_headers: Vec<String> = Vec::new();
        for (pi, p) in providers.iter().enumerate() {
            for (i, ch) in p.claims_to_headers.iter().enumerate() {
                let field = || format!("providers.{}.claims_to_headers[{i}].header", p.name);
                if ch.header == decision_header {
                    return refuse(field(), "is the decision header");
                }
                let token_header = providers.iter().any(|other| {
                    other.locations.iter().any(|l| {
                        matches!(l, TokenLocation::Header { name, .. } if *name == ch.header)
                            || (matches!(l, TokenLocation::Cookie(_)) && ch.header == "cookie")
                    })
                });
                if token_header {
                    return refuse(field(), "is where tokens are read from");
                }
                let _ = pi;
                if !managed_headers.contains(&ch.header) {
                    managed_headers.push(ch.header.clone());
                }
            }
        }
        // The decision header is the filter's own in every mode: a copy
        // sent by a client never reaches the upstream.
        if !managed_headers.contains(&decision_header) {
            managed_headers.push(decision_header.clone());
        }
        let uses_route_names = rules.iter().any(|r| r.matcher.uses_route());
        Ok(Policy {
            providers,
            rules,
            unmatched: config.unmatched,
            mode: config.mode,
            realm,
            decision_header,
            token_cache,
            limits,
            managed_headers,
            uses_route_names,
            use_host_crypto: config.use_host_crypto.unwrap_or(true),
            paths,
            route_check,
        })
    }

    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.providers.iter().position(|p| p.name == name)
    }

    /// The mode a decision of `rule` is carried out in (`None`: unmatched).
    pub fn mode_for(&self, rule: Option<RuleId>) -> Mode {
        rule.and_then(|r| self.rules.get(r))
            .map_or(self.mode, |r| r.mode)
    }
}

/// Deserializes the configuration, naming the field when the JSON does not
/// fit (unknown field, wrong type).
pub fn parse_config(bytes: &[u8]) -> Result<PluginConfig, ConfigError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let config: PluginConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut field = e.path().to_string();
        if field == "." {
            field.clear();
        }
        let message = e.into_inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(missing);
        }
        ConfigError { field, message }
    })?;
    de.end().map_err(|e| ConfigError {
        field: String::new(),
        message: e.to_string(),
    })?;
    Ok(config)
}

fn compile_limits(c: Option<&LimitsConfig>) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let Some(c) = c else { return Ok(d) };
    let pick = |field: &str, v: Option<usize>, default: usize, lo: usize, hi: usize| {
        let v = v.unwrap_or(default);
        if v < lo || v > hi {
            refuse(
                format!("limits.{field}"),
                format!("must be between {lo} and {hi}"),
            )
        } else {
            Ok(v)
        }
    };
    Ok(Limits {
        max_token_bytes: pick(
            "max_token_bytes",
            c.max_token_bytes,
            d.max_token_bytes,
            256,
            65536,
        )?,
        max_header_bytes: pick(
            "max_header_bytes",
            c.max_header_bytes,
            d.max_header_bytes,
            64,
            8192,
        )?,
        max_json_depth: pick("max_json_depth", c.max_json_depth, d.max_json_depth, 2, 64)?,
        max_jwks_bytes: pick(
            "max_jwks_bytes",
            c.max_jwks_bytes,
            d.max_jwks_bytes,
            1024,
            4 << 20,
        )?,
        max_jwks_keys: pick("max_jwks_keys", c.max_jwks_keys, d.max_jwks_keys, 1, 1024)?,
    })
}

fn compile_paths(c: Option<&PathNormalizationConfig>) -> PathRules {
    let d = PathRules::DEFAULT;
    let Some(c) = c else { return d };
    PathRules {
        rewrite: c
            .non_normal
            .map_or(d.rewrite, |n| n == NonNormalPath::Rewrite),
        merge_slashes: c.merge_slashes.unwrap_or(d.merge_slashes),
        allow_ambiguous: c
            .ambiguous
            .map_or(d.allow_ambiguous, |a| a == AmbiguousPath::Allow),
    }
}

fn compile_cache(c: Option<&TokenCacheConfig>) -> Result<CacheSettings, ConfigError> {
    let d = CacheSettings::default();
    let Some(c) = c else { return Ok(d) };
    let max_entries = c.max_entries.unwrap_or(d.max_entries);
    if max_entries > 1_000_000 {
        return refuse("token_cache.max_entries", "must be at most 1000000");
    }
    let max_bytes = c.max_bytes.unwrap_or(d.max_bytes);
    if max_bytes > 1 << 30 {
        return refuse("token_cache.max_bytes", "must be at most 1 GiB");
    }
    Ok(CacheSettings {
        max_entries,
        max_bytes,
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn compile_provider(
    name: &str,
    p: &ProviderConfig,
    limits: &Limits,
) -> Result<Provider, ConfigError> {
    let at = |field: &str| format!("providers.{name}.{field}");
    if !is_name(name) {
        return refuse(
            format!("providers.{}", clip(name, 64)),
            "provider names use letters, digits, '_' and '-' (at most 64)",
        );
    }
    if p.issuer.is_empty() {
        return refuse(at("issuer"), "must not be empty");
    }
    for (i, a) in p.audiences.iter().enumerate() {
        if a.is_empty() {
            return refuse(at(&format!("audiences[{i}]")), "must not be empty");
        }
    }
    if p.token_use.as_deref() == Some("") {
        return refuse(at("token_use"), "must not be empty");
    }

    let algorithms: AlgorithmSet = match &p.algorithms {
        None => Algorithm::ASYMMETRIC.into_iter().collect(),
        Some(names) => {
            if names.is_empty() {
                return refuse(at("algorithms"), "must not be empty");
            }
            let mut set = AlgorithmSet::default();
            for (i, n) in names.iter().enumerate() {
                match Algorithm::from_name(n) {
                    Some(a) => set.insert(a),
                    None if n.eq_ignore_ascii_case("none") => {
                        return refuse(
                            at(&format!("algorithms[{i}]")),
                            "\"none\" is never allowed",
                        );
                    }
                    None => {
                        return refuse(
                            at(&format!("algorithms[{i}]")),
                            format!("unknown algorithm \"{}\"", clip(n, 20)),
                        );
                    }
                }
            }
            set
        }
    };
    let wants_hmac = algorithms.iter().any(Algorithm::is_symmetric);
    let wants_keys = algorithms.iter().any(|a| !a.is_symmetric());

    let secret = match (&p.shared_secret_base64, wants_hmac) {
        (None, false) => None,
        (None, true) => {
            return refuse(
                at("shared_secret_base64"),
                "required when algorithms include HS256/384/512",
            );
        }
        (Some(_), false) => {
            return refuse(
                at("shared_secret_base64"),
                "given, but algorithms include no HS algorithm",
            );
        }
        (Some(s), true) => {
            let Some(bytes) = b64::decode_standard(s) else {
                return refuse(at("shared_secret_base64"), "is not base64");
            };
            let needed = algorithms
                .iter()
                .filter(|a| a.is_symmetric())
                .map(|a| a.hash().output_len())
                .max()
                .unwrap_or(32);
            if bytes.len() < needed {
                return refuse(
                    at("shared_secret_base64"),
                    format!(
                        "must hold at least {needed} bytes for the HS algorithms allowed (RFC 7518 §3.2)"
                    ),
                );
            }
            Some(bytes)
        }
    };

    let keys = match (&p.local_jwks, &p.remote_jwks) {
        (Some(_), Some(_)) => {
            return refuse(
                at("remote_jwks"),
                "local_jwks and remote_jwks are exclusive",
            );
        }
        (None, None) if wants_keys => {
            return refuse(
                at("local_jwks"),
                "one of local_jwks or remote_jwks is required for asymmetric algorithms",
            );
        }
        (None, None) => KeySource::SecretOnly,
        (Some(doc), None) => KeySource::Local(compile_local_jwks(&at("local_jwks"), doc, limits)?),
        (None, Some(r)) => KeySource::Remote(compile_remote_jwks(&at("remote_jwks"), r)?),
    };

    let clock_skew_s = p.clock_skew_s.unwrap_or(60);
    if clock_skew_s > 3600 {
        return refuse(at("clock_skew_s"), "must be at most 3600");
    }

    let mut locations = Vec::new();
    let default_header =
        p.from_headers.is_none() && p.from_params.is_empty() && p.from_cookies.is_empty();
    if default_header {
        locations.push(TokenLocation::bearer());
    }
    for (i, h) in p.from_headers.iter().flatten().enumerate() {
        let name = header_name(&at(&format!("from_headers[{i}].name")), &h.name)?;
        if name == "cookie" {
            return refuse(
                at(&format!("from_headers[{i}].name")),
                "use from_cookies for cookies",
            );
        }
        if h.prefix
            .as_ref()
            .is_some_and(|p| p.trim().is_empty() || !p.is_ascii())
        {
            return refuse(
                at(&format!("from_headers[{i}].prefix")),
                "must be non-blank ASCII",
            );
        }
        locations.push(TokenLocation::Header {
            name,
            prefix: h.prefix.clone(),
        });
    }
    for (i, name) in p.from_params.iter().enumerate() {
        if name.is_empty()
            || name
                .bytes()
                .any(|b| matches!(b, b'&' | b'=' | b'#' | b'?') || b <= b' ')
        {
            return refuse(
                at(&format!("from_params[{i}]")),
                "is not a query parameter name",
            );
        }
        locations.push(TokenLocation::Param(name.clone()));
    }
    for (i, name) in p.from_cookies.iter().enumerate() {
        if !is_token(name) {
            return refuse(at(&format!("from_cookies[{i}]")), "is not a cookie name");
        }
        locations.push(TokenLocation::Cookie(name.clone()));
    }
    if locations.is_empty() {
        return refuse(at("from_headers"), "no place to read the token from");
    }
    for (i, l) in locations.iter().enumerate() {
        if locations.get(..i).unwrap_or_default().contains(l) {
            return refuse(
                at("from_headers"),
                "the same token location is listed twice",
            );
        }
    }

    let claims = compile_claims(&at("claims"), &p.claims)?;
    let mut claims_to_headers: Vec<ClaimHeader> = Vec::new();
    for (i, ch) in p.claims_to_headers.iter().enumerate() {
        if ch.claim.is_empty() {
            return refuse(
                at(&format!("claims_to_headers[{i}].claim")),
                "must not be empty",
            );
        }
        let field = at(&format!("claims_to_headers[{i}].header"));
        let header = header_name(&field, &ch.header)?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return refuse(field, "is a header the filter must not set");
        }
        if claims_to_headers.iter().any(|c| c.header == header) {
            return refuse(field, "is set twice");
        }
        claims_to_headers.push(ClaimHeader {
            claim: ch.claim.clone(),
            header,
        });
    }

    Ok(Provider {
        name: name.to_owned(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        token_use: p.token_use.clone(),
        algorithms,
        keys,
        secret,
        clock_skew_s,
        require_exp: p.require_exp.unwrap_or(true),
        require_low_s: p.require_low_s.unwrap_or(false),
        locations,
        claims,
        claims_to_headers,
        forward_token: p.forward_token.unwrap_or(true),
    })
}

/// Headers that carry the request's framing or routing, or the caller's own
/// credentials: never set from a claim.
const RESERVED_HEADERS: [&str; 11] = [
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

fn compile_local_jwks(field: &str, doc: &Value, limits: &Limits) -> Result<KeySet, ConfigError> {
    let owned;
    let object = match doc {
        Value::Object(map) => map,
        Value::String(text) => {
            owned =
                crate::json::parse_object(text.as_bytes(), limits.max_json_depth).map_err(|e| {
                    ConfigError {
                        field: field.to_owned(),
                        message: format!("the string is {e}"),
                    }
                })?;
            &owned
        }
        _ => return refuse(field, "must be a JWKS object or a string holding one"),
    };
    let parsed = jwks::parse_jwks_object(object, limits).map_err(|e| ConfigError {
        field: join_field(field, &e.field),
        message: e.message,
    })?;
    if let Some(e) = parsed.skipped.first() {
        return refuse(join_field(field, &e.field), e.message.clone());
    }
    if parsed.keys.is_empty() {
        return refuse(join_field(field, "keys"), "holds no key");
    }
    Ok(parsed.keys)
}

fn join_field(base: &str, inner: &str) -> String {
    if inner.is_empty() {
        base.to_owned()
    } else {
        format!("{base}.{inner}")
    }
}

fn compile_remote_jwks(field: &str, r: &RemoteJwksConfig) -> Result<RemoteJwks, ConfigError> {
    let at = |f: &str| format!("{field}.{f}");
    if r.cluster.trim().is_empty() {
        return refuse(at("cluster"), "must name an Envoy cluster");
    }
    let (authority, path) = split_uri(&r.uri).ok_or_else(|| ConfigError {
        field: at("uri"),
        message: "must be an absolute http(s) URL such as https://host/path/jwks.json".into(),
    })?;
    let positive = |name: &str, v: Option<u64>, default: u64, max: u64| {
        let v = v.unwrap_or(default);
        if v == 0 || v > max {
            refuse(at(name), format!("must be between 1 and {max}"))
        } else {
            Ok(v)
        }
    };
    Ok(RemoteJwks {
        cluster: r.cluster.clone(),
        uri: r.uri.clone(),
        authority,
        path,
        timeout_ms: positive("timeout_ms", r.timeout_ms, 5000, 60_000)?,
        cache_ttl_s: positive("cache_ttl_s", r.cache_ttl_s, 3600, 30 * 86_400)?,
        max_stale_s: positive("max_stale_s", r.max_stale_s, 86_400, 30 * 86_400)?,
        refetch_cooldown_s: positive("refetch_cooldown_s", r.refetch_cooldown_s, 30, 86_400)?,
    })
}

/// `(authority, path-and-query)` of an absolute http(s) URL.
fn split_uri(uri: &str) -> Option<(String, String)> {
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

fn compile_claims(field: &str, claims: &[ClaimConfig]) -> Result<Vec<ClaimRule>, ConfigError> {
    claims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.claim.is_empty() {
                return refuse(format!("{field}[{i}].claim"), "must not be empty");
            }
            if c.one_of.is_empty() {
                return refuse(format!("{field}[{i}].one_of"), "must not be empty");
            }
            for (j, v) in c.one_of.iter().enumerate() {
                if !(v.is_string() || v.is_number() || v.is_boolean()) {
                    return refuse(
                        format!("{field}[{i}].one_of[{j}]"),
                        "must be a string, number or boolean",
                    );
                }
            }
            Ok(ClaimRule {
                claim: c.claim.clone(),
                one_of: c.one_of.clone(),
                required: c.required.unwrap_or(true),
            })
        })
        .collect()
}

fn compile_rule(
    i: usize,
    r: &RuleConfig,
    providers: &[Provider],
    mode: Mode,
    paths: &PathRules,
) -> Result<Rule, ConfigError> {
    let at = |f: &str| format!("rules[{i}].{f}");
    let m = &r.match_;
    // Request paths are matched in normal form, so rule paths are put in
    // the same form here (`/%7Eadmin` is `/~admin`, `/api/./x` is `/api/x`);
    // a rule path that no request path can equal is refused.
    let path_field = |name: &str, v: &Option<String>| -> Result<Option<Vec<u8>>, ConfigError> {
        let field = || at(&format!("match.{name}"));
        match v {
            None => Ok(None),
            Some(p) if !p.starts_with('/') => refuse(field(), "must start with '/'"),
            Some(p) if p.contains(['?', '#']) => {
                refuse(field(), "must not contain a query or fragment")
            }
            Some(p) => match path::normalize(p.as_bytes(), paths) {
                Ok(normal) => Ok(Some(normal.into_owned())),
                Err(problem) => refuse(
                    field(),
                    format!(
                        "can never match: {} (refused in request paths; see path_normalization.ambiguous)",
                        problem.description()
                    ),
                ),
            },
        }
    };
    let methods = match &m.methods {
        None => None,
        Some(ms) if ms.is_empty() => return refuse(at("match.methods"), "must not be empty"),
        Some(ms) => Some(
            ms.iter()
                .enumerate()
                .map(|(j, method)| {
                    if is_token(method) {
                        Ok(method.to_ascii_uppercase().into_bytes())
                    } else {
                        refuse(at(&format!("match.methods[{j}]")), "is not an HTTP method")
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    if m.route.as_deref() == Some("") {
        return refuse(at("match.route"), "must not be empty");
    }
    let matcher = Matcher {
        path: path_field("path", &m.path)?,
        prefix: path_field("prefix", &m.prefix)?,
        route: m.route.as_ref().map(|r| r.as_bytes().to_vec()),
        methods,
    };
    let access = match (r.allow_anonymous, &r.requires) {
        (true, Some(_)) => {
            return refuse(
                at("requires"),
                "a rule cannot both allow_anonymous and require a token",
            );
        }
        (true, None) => Access::Anonymous,
        (false, None) => return refuse(at("requires"), "required unless allow_anonymous is true"),
        (false, Some(req)) => {
            let provider = match &req.provider {
                Some(name) => providers
                    .iter()
                    .position(|p| p.name == *name)
                    .ok_or_else(|| ConfigError {
                        field: at("requires.provider"),
                        message: format!("unknown provider \"{}\"", clip(name, 64)),
                    })?,
                None if providers.len() == 1 => 0,
                None => {
                    return refuse(
                        at("requires.provider"),
                        "required when more than one provider is configured",
                    );
                }
            };
            let scope_list = |name: &str, list: &[String]| -> Result<Vec<String>, ConfigError> {
                for (j, s) in list.iter().enumerate() {
                    if s.is_empty()
                        || s.bytes()
                            .any(|b| b <= b' ' || b == b'"' || b == b'\\' || b >= 0x7f)
                    {
                        return refuse(
                            at(&format!("requires.{name}[{j}]")),
                            "is not a scope token",
                        );
                    }
                }
                Ok(list.to_vec())
            };
            let any_scopes = scope_list("scopes", &req.scopes)?;
            let all_scopes = scope_list("all_scopes", &req.all_scopes)?;
            let mut named: Vec<&str> = Vec::new();
            for s in any_scopes.iter().chain(&all_scopes) {
                if !named.contains(&s.as_str()) {
                    named.push(s);
                }
            }
            let scope_hint = (!named.is_empty()).then(|| named.join(" "));
            Access::Token(TokenRequirement {
                provider,
                any_scopes,
                all_scopes,
                claims: compile_claims(&at("requires.claims"), &req.claims)?,
                scope_hint,
            })
        }
    };
    let name = match &r.name {
        Some(n) if !is_name(n) => {
            return refuse(
                at("name"),
                "rule names use letters, digits, '_' and '-' (at most 64)",
            );
        }
        Some(n) => n.clone(),
        None => i.to_string(),
    };
    Ok(Rule {
        name,
        matcher,
        access,
        mode: r.mode.unwrap_or(mode),
    })
}

/// RFC 7230 `token` characters.
fn is_token(s: &str) -> bool {
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

fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    if !is_token(name) {
        return refuse(field, "is not a valid header name");
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jwks::tests::{ec_jwk, ed_jwk, rsa_jwk};
    use serde_json::json;

    /// The configuration of the core issue, with test keys.
    pub fn example() -> Value {
        json!({
          "providers": {
            "cognito": {
              "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot",
              "audiences": ["14aq5ll5b1it6f62uefem6aqhn"],
              "token_use": "access",
              "algorithms": ["RS256"],
              "local_jwks": { "keys": [ rsa_jwk("k1") ] },
              "clock_skew_s": 60,
              "require_exp": true,
              "from_headers": [{ "name": "authorization", "prefix": "Bearer " }],
              "from_params": ["access_token"],
              "from_cookies": ["session_token"],
              "claims": [{ "claim": "client_id", "one_of": ["14aq5ll5b1it6f62uefem6aqhn"], "required": true }],
              "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }],
              "forward_token": true
            }
          },
          "rules": [
            { "match": { "path": "/healthz" }, "allow_anonymous": true },
            { "match": { "prefix": "/api/v1/order", "methods": ["POST"] },
              "requires": { "provider": "cognito", "scopes": ["order/post.order"] } },
            { "match": { "prefix": "/api/v1/order", "methods": ["GET"] },
              "requires": { "provider": "cognito", "scopes": ["order/get.order", "order/admin"] } },
            { "match": { "route": "admin_route" },
              "requires": { "provider": "cognito", "all_scopes": ["order/admin", "order/audit"] } }
          ],
          "unmatched": "deny",
          "route_check": true
        })
    }

    fn compile(v: &Value) -> Result<Policy, ConfigError> {
        Policy::from_json(v.to_string().as_bytes())
    }

    fn refused(v: &Value) -> ConfigError {
        compile(v).unwrap_err()
    }

    #[test]
    fn compiles_the_example() {
        let p = compile(&example()).unwrap();
        assert_eq!(p.providers.len(), 1);
        assert_eq!(p.rules.len(), 4);
        assert_eq!(p.rules[3].name, "3");
        assert!(p.uses_route_names && p.route_check);
        assert_eq!(p.managed_headers, ["x-client-id", "x-jwt-policy-decision"]);
        assert_eq!(p.realm, "api");
        let c = &p.providers[0];
        assert_eq!(c.locations.len(), 3);
        assert!(c.algorithms.contains(Algorithm::RS256));
        assert!(!c.algorithms.contains(Algorithm::ES256));
        let Access::Token(req) = &p.rules[2].access else {
            panic!()
        };
        assert_eq!(
            req.scope_hint.as_deref(),
            Some("order/get.order order/admin")
        );
    }

    #[test]
    fn defaults() {
        let p = compile(&json!({
            "providers": {"p": {"issuer": "i", "local_jwks": {"keys": [ec_jwk("e")]}}},
            "rules": [{"match": {}, "requires": {}}]
        }))
        .unwrap();
        let prov = &p.providers[0];
        assert_eq!(prov.locations, [TokenLocation::bearer()]);
        assert_eq!(prov.clock_skew_s, 60);
        assert!(prov.require_exp && prov.forward_token);
        assert_eq!(prov.algorithms.iter().count(), 9);
        assert_eq!(p.unmatched, Unmatched::Deny);
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.token_cache, CacheSettings::default());
        assert!(!p.uses_route_names && !p.route_check);
        assert_eq!(p.paths, PathRules::DEFAULT);
    }

    #[test]
    fn local_jwks_as_a_string() {
        let mut c = example();
        c["providers"]["cognito"]["local_jwks"] =
            json!(json!({"keys": [rsa_jwk("a")]}).to_string());
        assert!(compile(&c).is_ok());
    }

    #[test]
    fn names_the_field_of_type_and_unknown_field_errors() {
        let mut c = example();
        c["providers"]["cognito"]["audience"] = json!("x");
        let e = refused(&c);
        assert_eq!(e.field, "providers.cognito.audience");
        assert!(e.message.contains("unknown field"), "{e}");

        let mut c = example();
        c["providers"]["cognito"]["clock_skew_s"] = json!(-5);
        assert_eq!(refused(&c).field, "providers.cognito.clock_skew_s");

        let mut c = example();
        c["rules"][1]["match"]["methods"] = json!("POST");
        assert_eq!(refused(&c).field, "rules[1].match.methods");

        let mut c = example();
        c["unmatched"] = json!("maybe");
        assert_eq!(refused(&c).field, "unmatched");

        let e = Policy::from_json(b"{not json").unwrap_err();
        assert!(e.message.contains("line 1"), "{e}");
        assert!(Policy::from_json(b"{\"providers\":{}} x").is_err());
    }

    #[test]
    fn refuses_bad_values_naming_the_field() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "rules[1].requires.provider",
                Box::new(|c| c["rules"][1]["requires"]["provider"] = json!("nope")),
            ),
            (
                "providers.cognito.local_jwks.keys[0].n",
                Box::new(|c| {
                    c["providers"]["cognito"]["local_jwks"]["keys"][0]["n"] = json!("AQAB")
                }),
            ),
            (
                "providers.cognito.local_jwks.keys",
                Box::new(|c| c["providers"]["cognito"]["local_jwks"] = json!({"keys": []})),
            ),
            (
                "providers.cognito.local_jwks",
                Box::new(|c| c["providers"]["cognito"]["local_jwks"] = json!("{nope")),
            ),
            (
                "providers.cognito.algorithms[0]",
                Box::new(|c| c["providers"]["cognito"]["algorithms"] = json!(["none"])),
            ),
            (
                "providers.cognito.algorithms[1]",
                Box::new(|c| c["providers"]["cognito"]["algorithms"] = json!(["RS256", "XS1"])),
            ),
            (
                "providers.cognito.shared_secret_base64",
                Box::new(|c| c["providers"]["cognito"]["algorithms"] = json!(["HS256"])),
            ),
            (
                "providers.cognito.issuer",
                Box::new(|c| c["providers"]["cognito"]["issuer"] = json!("")),
            ),
            (
                "providers.cognito.audiences[0]",
                Box::new(|c| c["providers"]["cognito"]["audiences"] = json!([""])),
            ),
            (
                "providers.cognito.claims[0].one_of",
                Box::new(|c| c["providers"]["cognito"]["claims"][0]["one_of"] = json!([])),
            ),
            (
                "providers.cognito.claims[0].one_of[0]",
                Box::new(|c| c["providers"]["cognito"]["claims"][0]["one_of"] = json!([{"a": 1}])),
            ),
            (
                "providers.cognito.claims_to_headers[0].header",
                Box::new(|c| {
                    c["providers"]["cognito"]["claims_to_headers"][0]["header"] =
                        json!("bad header")
                }),
            ),
            (
                "providers.cognito.claims_to_headers[0].header",
                Box::new(|c| {
                    c["providers"]["cognito"]["claims_to_headers"][0]["header"] =
                        json!("Authorization")
                }),
            ),
            (
                "providers.cognito.from_headers[0].name",
                Box::new(|c| c["providers"]["cognito"]["from_headers"][0]["name"] = json!("")),
            ),
            (
                "providers.cognito.from_cookies[0]",
                Box::new(|c| c["providers"]["cognito"]["from_cookies"] = json!(["a b"])),
            ),
            (
                "providers.cognito.clock_skew_s",
                Box::new(|c| c["providers"]["cognito"]["clock_skew_s"] = json!(100_000)),
            ),
            (
                "providers.cognito.remote_jwks",
                Box::new(|c| {
                    c["providers"]["cognito"]["remote_jwks"] =
                        json!({"cluster": "c", "uri": "https://h/j"})
                }),
            ),
            (
                "rules[0].match.path",
                Box::new(|c| c["rules"][0]["match"]["path"] = json!("healthz")),
            ),
            (
                "rules[1].match.prefix",
                Box::new(|c| c["rules"][1]["match"]["prefix"] = json!("/a?b")),
            ),
            (
                "rules[1].match.methods[0]",
                Box::new(|c| c["rules"][1]["match"]["methods"] = json!(["PO ST"])),
            ),
            (
                "rules[0].requires",
                Box::new(|c| c["rules"][0]["requires"] = json!({})),
            ),
            (
                "rules[1].requires",
                Box::new(|c| {
                    c["rules"][1]
                        .as_object_mut()
                        .unwrap()
                        .remove("requires")
                        .map(|_| ())
                        .unwrap()
                }),
            ),
            (
                "rules[1].requires.scopes[0]",
                Box::new(|c| c["rules"][1]["requires"]["scopes"] = json!(["a b"])),
            ),
            (
                "rules[1].name",
                Box::new(|c| {
                    c["rules"][0]["name"] = json!("x");
                    c["rules"][1]["name"] = json!("x");
                }),
            ),
            ("realm", Box::new(|c| c["realm"] = json!("a\"b"))),
            (
                "limits.max_token_bytes",
                Box::new(|c| c["limits"] = json!({"max_token_bytes": 10})),
            ),
            (
                "token_cache.max_entries",
                Box::new(|c| c["token_cache"] = json!({"max_entries": 10_000_000})),
            ),
            (
                "providers.bad name",
                Box::new(|c| c["providers"]["bad name"] = c["providers"]["cognito"].clone()),
            ),
        ];
        for (field, mutate) in cases {
            let mut c = example();
            mutate(&mut c);
            let e = refused(&c);
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn rule_paths_are_put_in_normal_form() {
        let rules = |p: Value, extra: Value| {
            let mut c = example();
            c["rules"] = json!([{ "match": p, "allow_anonymous": true }]);
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            compile(&c)
        };
        let p = rules(json!({"prefix": "/%7Eadmin"}), json!({})).unwrap();
        assert_eq!(p.rules[0].matcher.prefix.as_deref(), Some(&b"/~admin"[..]));
        let p = rules(json!({"path": "/api/./internal//x"}), json!({})).unwrap();
        assert_eq!(
            p.rules[0].matcher.path.as_deref(),
            Some(&b"/api/internal/x"[..])
        );
        for ambiguous in ["/a%2fb", "/a%2Fb", "/public/..;/x", "/a\\b"] {
            let e = rules(json!({"prefix": ambiguous}), json!({})).unwrap_err();
            assert_eq!(e.field, "rules[0].match.prefix", "{ambiguous}");
            assert!(e.message.contains("can never match"), "{e}");
        }
        let allow = json!({"path_normalization": {"ambiguous": "allow"}});
        let p = rules(json!({"prefix": "/a%2fb"}), allow).unwrap();
        assert_eq!(p.rules[0].matcher.prefix.as_deref(), Some(&b"/a%2Fb"[..]));
        let keep = json!({"path_normalization": {"merge_slashes": false, "non_normal": "reject"}});
        let p = rules(json!({"path": "//a"}), keep).unwrap();
        assert_eq!(p.rules[0].matcher.path.as_deref(), Some(&b"//a"[..]));
        assert_eq!(
            p.paths,
            PathRules {
                rewrite: false,
                merge_slashes: false,
                allow_ambiguous: false
            }
        );
    }

    #[test]
    fn route_rules_need_the_route_check() {
        let mut c = example();
        c.as_object_mut().unwrap().remove("route_check");
        let e = refused(&c);
        assert_eq!(e.field, "rules[3].match.route");
        assert!(e.message.contains("route_check"), "{e}");
        c["route_check"] = json!(false);
        assert_eq!(refused(&c).field, "rules[3].match.route");
    }

    #[test]
    fn provider_may_be_implied_only_when_unique() {
        let mut c = example();
        c["rules"][1]["requires"]
            .as_object_mut()
            .unwrap()
            .remove("provider");
        assert!(compile(&c).is_ok());
        c["providers"]["other"] = json!({"issuer": "o", "local_jwks": {"keys": [ed_jwk("d")]}});
        assert_eq!(refused(&c).field, "rules[1].requires.provider");
    }

    #[test]
    fn hmac_needs_a_long_enough_secret() {
        let secret32 = crate::b64::encode(&[7u8; 32]);
        let hs = |algs: Value, secret: &str| {
            json!({"providers": {"p": {"issuer": "i", "algorithms": algs, "shared_secret_base64": secret}},
                   "rules": [{"match": {}, "requires": {}}]})
        };
        assert!(compile(&hs(json!(["HS256"]), &secret32)).is_ok());
        // base64url output of 32 bytes is also valid standard base64 here
        assert_eq!(
            refused(&hs(json!(["HS512"]), &secret32)).field,
            "providers.p.shared_secret_base64"
        );
        assert_eq!(
            refused(&hs(json!(["HS256"]), "c2hvcnQ=")).field,
            "providers.p.shared_secret_base64"
        );
        assert_eq!(
            refused(&hs(json!(["HS256", "RS256"]), &secret32)).field,
            "providers.p.local_jwks"
        );
        let mut c = example();
        c["providers"]["cognito"]["shared_secret_base64"] = json!(secret32);
        assert_eq!(refused(&c).field, "providers.cognito.shared_secret_base64");
    }

    #[test]
    fn remote_jwks_is_checked() {
        let with = |r: Value| {
            let mut c = example();
            let p = c["providers"]["cognito"].as_object_mut().unwrap();
            p.remove("local_jwks");
            p.insert("remote_jwks".into(), r);
            c
        };
        let p = compile(&with(json!({
            "cluster": "cognito_idp",
            "uri": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot/.well-known/jwks.json"
        })))
        .unwrap();
        let KeySource::Remote(r) = &p.providers[0].keys else {
            panic!()
        };
        assert_eq!(r.authority, "cognito-idp.us-east-1.amazonaws.com");
        assert_eq!(r.path, "/us-east-1_pO0zNXTot/.well-known/jwks.json");
        assert_eq!(
            (
                r.timeout_ms,
                r.cache_ttl_s,
                r.max_stale_s,
                r.refetch_cooldown_s
            ),
            (5000, 3600, 86400, 30)
        );

        for (r, field) in [
            (
                json!({"uri": "https://h/j"}),
                "providers.cognito.remote_jwks.cluster",
            ),
            (
                json!({"cluster": "", "uri": "https://h/j"}),
                "providers.cognito.remote_jwks.cluster",
            ),
            (
                json!({"cluster": "c", "uri": "ftp://h/j"}),
                "providers.cognito.remote_jwks.uri",
            ),
            (
                json!({"cluster": "c", "uri": "https:///j"}),
                "providers.cognito.remote_jwks.uri",
            ),
            (
                json!({"cluster": "c", "uri": "https://u@h/j"}),
                "providers.cognito.remote_jwks.uri",
            ),
            (
                json!({"cluster": "c", "uri": "https://h:0/j"}),
                "providers.cognito.remote_jwks.uri",
            ),
            (
                json!({"cluster": "c", "uri": "https://h/j k"}),
                "providers.cognito.remote_jwks.uri",
            ),
            (
                json!({"cluster": "c", "uri": "https://h/j", "timeout_ms": 0}),
                "providers.cognito.remote_jwks.timeout_ms",
            ),
            (
                json!({"cluster": "c", "uri": "https://h/j", "cache_ttl_s": 0}),
                "providers.cognito.remote_jwks.cache_ttl_s",
            ),
            (
                json!({"cluster": "c", "uri": "https://h/j", "max_stale_s": -1}),
                "providers.cognito.remote_jwks.max_stale_s",
            ),
            (
                json!({"cluster": "c", "uri": "https://h/j", "refetch_cooldown_s": 0}),
                "providers.cognito.remote_jwks.refetch_cooldown_s",
            ),
            (
                json!({"cluster": "c", "uri": "https://h/j", "ttl": 5}),
                "providers.cognito.remote_jwks.ttl",
            ),
        ] {
            assert_eq!(refused(&with(r.clone())).field, field, "{r}");
        }
    }

    #[test]
    fn splits_uris() {
        let s = |u: &str| split_uri(u);
        assert_eq!(
            s("https://h:8443/a/b?c=d"),
            Some(("h:8443".into(), "/a/b?c=d".into()))
        );
        assert_eq!(s("http://h"), Some(("h".into(), "/".into())));
        assert_eq!(s("http://h?x"), Some(("h".into(), "/?x".into())));
        assert_eq!(
            s("http://[::1]:8080/j"),
            Some(("[::1]:8080".into(), "/j".into()))
        );
        assert_eq!(s("https://h/#f"), None);
        assert_eq!(s("h/j"), None);
    }

    /// Found by the `config` fuzz target: the decision header escaped the
    /// checks claim headers get, so `"decision_header": "authorization"`
    /// (or `content-length`) compiled, and report mode then replaced that
    /// header of every request with the decision.
    #[test]
    fn decision_header_is_not_a_reserved_or_token_header() {
        for header in ["authorization", "Content-Length", "cookie", "host", "x-jwt"] {
            let mut c = example();
            c["mode"] = json!("report");
            c["decision_header"] = json!(header);
            c["providers"]["cognito"]["from_headers"] =
                json!([{ "name": "authorization", "prefix": "Bearer " }, { "name": "X-JWT" }]);
            assert_eq!(refused(&c).field, "decision_header", "{header}");
        }
        let mut c = example();
        c["decision_header"] = json!("X-Would-Deny");
        assert_eq!(compile(&c).unwrap().decision_header, "x-would-deny");
    }

    #[test]
    fn report_mode_manages_the_decision_header() {
        let mut c = example();
        c["rules"][1]["mode"] = json!("report");
        let p = compile(&c).unwrap();
        assert_eq!(p.managed_headers, ["x-client-id", "x-jwt-policy-decision"]);
        assert_eq!(p.mode_for(Some(1)), Mode::Report);
        assert_eq!(p.mode_for(Some(2)), Mode::Enforce);
        assert_eq!(p.mode_for(None), Mode::Enforce);
    }
}
