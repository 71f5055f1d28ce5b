//! The plugin configuration JSON, exactly as users write it (in `envoy.yaml`,
//! Istio's `WasmPlugin.pluginConfig` or any proxy-wasm host). These types only
//! describe the document; [`crate::policy::Policy::from_config`] checks it and
//! compiles it into what the filter runs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[cfg(not(target_arch = "wasm32"))]
use crate::policy::defaults as d;

/// The whole plugin configuration.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Token issuers, by a name that rules refer to.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Ordered rules; the first whose `match` fits the request decides.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// What happens to a request that matches no rule: `deny` (default) or `allow`.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// `enforce` (default) answers denials; `report` only reports them to the
    /// upstream in a header and in the stats, and lets the request through.
    #[serde(default)]
    pub mode: Mode,
    /// The `realm` of the `WWW-Authenticate` challenge.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::REALM)))]
    pub realm: Option<String>,
    /// Header that carries the would-be decision upstream in report mode.
    ///
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::DECISION_HEADER)))]
    pub decision_header: Option<String>,
    /// Per-VM cache of verified tokens.
    #[serde(default)]
    pub token_cache: Option<TokenCacheConfig>,
    /// Verify RS256/384/512 and ES256/384 signatures with the host's native
    /// crypto (Envoy's BoringSSL) when it offers it and passes a self-test.
    /// False keeps every check on the pure-Rust verifier.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::USE_HOST_CRYPTO)))]
    pub use_host_crypto: Option<bool>,
    /// Size limits applied before any parsing.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// How request paths are normalised before rules are matched, and what
    /// the upstream then receives.
    #[serde(default)]
    pub path_normalization: Option<PathNormalizationConfig>,
    /// The filter also runs a second time later in the HTTP filter chain
    /// (after a filter that makes Envoy select the route again) and decides
    /// route-name rules again on the route the request is forwarded on.
    /// Required when a rule matches on `route`.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::ROUTE_CHECK)))]
    pub route_check: Option<bool>,
    /// Let CORS preflight requests (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) through without a token: browsers
    /// never send credentials on a preflight.
    #[serde(default)]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend("default" = d::BYPASS_CORS_PREFLIGHT))
    )]
    pub bypass_cors_preflight: Option<bool>,
    /// Publish every decision as Envoy filter state (`wasm.jwt_policy.decision`,
    /// `.reason`, `.rule`, `.provider`) for access logs and other filters.
    #[serde(default)]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend("default" = d::DECISION_TO_FILTER_STATE))
    )]
    pub decision_to_filter_state: Option<bool>,
}

/// Path normalisation (RFC 3986 §6.2.2: unreserved escapes decoded, dot
/// segments removed as §5.2.4 says, slashes merged).
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PathNormalizationConfig {
    /// A path that is not already normal: `rewrite` (default) forwards it
    /// with `:path` rewritten to the normal form the rules were matched on;
    /// `reject` answers 400.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = "rewrite")))]
    pub non_normal: Option<NonNormalPath>,
    /// Merge runs of `/` into one (after dot segments are removed).
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = crate::path::PathRules::DEFAULT.merge_slashes)))]
    pub merge_slashes: Option<bool>,
    /// Paths that common upstreams read differently: encoded `/` or `\`
    /// (`%2F`, `%5C`), a literal `\`, `;` parameters (`..;/`), an encoded
    /// `;`, encoded control characters, broken escapes. `reject` (default)
    /// answers 400; `allow` keeps them as opaque bytes.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = "reject")))]
    pub ambiguous: Option<AmbiguousPath>,
}

/// What happens to a path that is not in normal form.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum NonNormalPath {
    /// Forward it with `:path` rewritten to the normal form.
    Rewrite,
    /// Answer 400 `invalid_request`.
    Reject,
}

/// What happens to a path that common upstreams read differently.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum AmbiguousPath {
    /// Answer 400 `invalid_request`.
    Reject,
    /// Decide on it as opaque bytes (only where the upstream is known to
    /// read it the same way).
    Allow,
}

/// One token issuer and how its tokens are validated.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Exact value the `iss` claim must have.
    pub issuer: String,
    /// Accepted audiences: `aud` (string or array) must hold one of them; a
    /// token without `aud` passes when its `client_id` is one of them (Cognito
    /// access tokens). Empty or absent: audience not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// When set, the `token_use` claim must equal it (`access` for Cognito
    /// access tokens, `id` for ID tokens).
    #[serde(default)]
    pub token_use: Option<String>,
    /// Allowed `alg` values. Default: every asymmetric algorithm.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Keys inline: a JWKS as a JSON object or as a string holding one. With
    /// `remote_jwks` too, these are bootstrap keys: they serve until the
    /// first successful fetch, and whenever no fetched keys are usable.
    #[serde(default)]
    pub local_jwks: Option<Value>,
    /// Keys fetched from the issuer's JWKS URL through an Envoy cluster.
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwksConfig>,
    /// Base64 of the shared secret for HS256/384/512. Required when, and only
    /// allowed when, `algorithms` names an HS algorithm.
    #[serde(default)]
    pub shared_secret_base64: Option<String>,
    /// Tolerance in seconds for `exp`, `nbf` and `iat`.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::CLOCK_SKEW_S), range(min = 0, max = d::MAX_CLOCK_SKEW_S)))]
    pub clock_skew_s: Option<u64>,
    /// Refuse ECDSA signatures whose `s` is in the upper half of the group
    /// order (their malleable twin). Only for signers that normalise `s`;
    /// most do not.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::REQUIRE_LOW_S)))]
    pub require_low_s: Option<bool>,
    /// Whether a token without `exp` is refused.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::REQUIRE_EXP)))]
    pub require_exp: Option<bool>,
    /// Headers the token may come in. Default: `authorization` with prefix
    /// `Bearer ` (scheme case-insensitive), unless `from_params` or
    /// `from_cookies` is given.
    #[serde(default)]
    pub from_headers: Option<Vec<HeaderLocationConfig>>,
    /// Query parameters the token may come in.
    #[serde(default)]
    pub from_params: Vec<String>,
    /// Cookies the token may come in.
    #[serde(default)]
    pub from_cookies: Vec<String>,
    /// Claims every token of this provider must carry (failures are 401).
    #[serde(default)]
    pub claims: Vec<ClaimConfig>,
    /// Claims copied into request headers for the upstream.
    #[serde(default)]
    pub claims_to_headers: Vec<ClaimToHeaderConfig>,
    /// Claims published as Envoy filter state (`wasm.jwt_policy.claim.<name>`)
    /// for access logs and other filters, which need not trust a header.
    #[serde(default)]
    pub claims_to_filter_state: Vec<ClaimToFilterStateConfig>,
    /// Whether the token is passed on to the upstream.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::FORWARD_TOKEN)))]
    pub forward_token: Option<bool>,
    /// The scopes this issuer can grant. Only used by `jwt-policy check`,
    /// which warns about rules asking for a scope not listed here; the
    /// filter ignores it. Empty or absent: not checked.
    #[serde(default)]
    pub known_scopes: Vec<String>,
}

/// A header that may carry the token.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderLocationConfig {
    /// Header name (case-insensitive).
    pub name: String,
    /// Text before the token, e.g. `Bearer ` (compared case-insensitively).
    #[serde(default)]
    pub prefix: Option<String>,
}

/// A claim check.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimConfig {
    /// Claim name, or a dotted path into nested objects (`a.b.c`). A
    /// top-level claim whose name contains dots is found by its full name.
    pub claim: String,
    /// Accepted values (strings, numbers or booleans). The claim passes when
    /// it equals one, or is an array holding one. Absent: the claim must
    /// only be present (with `required` true).
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    /// When false, a token without the claim passes.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = true)))]
    pub required: Option<bool>,
}

/// A claim copied into a request header.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeaderConfig {
    /// Claim name or dotted path.
    pub claim: String,
    /// Request header to set. Any copy sent by the client is removed first,
    /// on every request.
    pub header: String,
}

/// A claim published as Envoy filter state.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimToFilterStateConfig {
    /// Claim name or dotted path.
    pub claim: String,
    /// The name under `wasm.jwt_policy.claim.` (letters, digits, `_`, `-`).
    pub name: String,
}

/// Where and how to fetch a provider's JWKS.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RemoteJwksConfig {
    /// The Envoy cluster the fetch goes through.
    pub cluster: String,
    /// The JWKS URL; `:authority` and `:path` of the fetch come from it.
    pub uri: String,
    /// Fetch timeout, and how long a request may wait for keys.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::TIMEOUT_MS), range(min = 1, max = d::MAX_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// How long fetched keys are fresh.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::CACHE_TTL_S), range(min = 1, max = d::MAX_CACHE_TTL_S)))]
    pub cache_ttl_s: Option<u64>,
    /// How long past expiry the last good keys keep serving while fetches
    /// fail.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::MAX_STALE_S), range(min = 1, max = d::MAX_MAX_STALE_S)))]
    pub max_stale_s: Option<u64>,
    /// Minimum time between refetches caused by an unknown `kid`, and the
    /// ceiling of the retry back-off.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::REFETCH_COOLDOWN_S), range(min = 1, max = d::MAX_REFETCH_COOLDOWN_S)))]
    pub refetch_cooldown_s: Option<u64>,
}

/// One policy rule.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Which requests the rule applies to; every given condition must hold.
    #[serde(rename = "match")]
    pub match_: MatchConfig,
    /// No token needed; a token that is present is ignored.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// What a token must satisfy. Required unless `allow_anonymous`.
    #[serde(default)]
    pub requires: Option<RequiresConfig>,
    /// With `requires`: a request without a token passes (without claim
    /// headers); one that carries a token must pass every check.
    #[serde(default)]
    pub allow_missing: bool,
    /// Overrides the top-level `mode` for this rule.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// A name for logs and stats. Default: the rule's index.
    #[serde(default)]
    pub name: Option<String>,
}

/// Request conditions of a rule.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Exact path, without the query string.
    #[serde(default)]
    pub path: Option<String>,
    /// Path prefix (plain string prefix, like Envoy's route `prefix`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// API Gateway route-key path: `{name}` is one path segment, a final
    /// `{name+}` the rest of the path (`/orders/{id}`, `/files/{proxy+}`).
    #[serde(default)]
    pub path_template: Option<String>,
    /// The request's authority: exact (`api.example.com`) or a wildcard
    /// (`*.example.com`), case-insensitive; the port is ignored unless the
    /// pattern names one.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// Envoy route name (`xds.route_name`).
    #[serde(default)]
    pub route: Option<String>,
    /// HTTP methods; absent means any.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
}

/// What a rule needs from the token.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RequiresConfig {
    /// The provider whose tokens are accepted. May be omitted when exactly
    /// one provider is configured.
    #[serde(default)]
    pub provider: Option<String>,
    /// Several providers whose tokens are accepted: the one whose `issuer` is
    /// the token's `iss` verifies it. Exclusive with `provider`.
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// The token must hold at least one of these scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The token must hold every one of these scopes.
    #[serde(default)]
    pub all_scopes: Vec<String>,
    /// Authorization claims; failures are 403.
    #[serde(default)]
    pub claims: Vec<ClaimConfig>,
}

/// What to do with requests no rule matches.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// Refuse it with 403 `insufficient_scope`.
    #[default]
    Deny,
    /// Let it through untouched.
    Allow,
}

/// Enforce decisions, or only report them.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answer denials with 401, 403 or 503.
    #[default]
    Enforce,
    /// Forward every request, with the would-be decision in a header.
    Report,
}

/// The verified-token cache.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenCacheConfig {
    /// Entries per VM; 0 turns the cache off.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::TOKEN_CACHE_ENTRIES), range(min = 0, max = d::MAX_TOKEN_CACHE_ENTRIES)))]
    pub max_entries: Option<usize>,
    /// Upper bound on the bytes the cached entries hold.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::TOKEN_CACHE_BYTES), range(min = 0, max = d::MAX_TOKEN_CACHE_BYTES)))]
    pub max_bytes: Option<usize>,
}

/// Size limits.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest accepted token in bytes.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::MAX_TOKEN_BYTES), range(min = d::MAX_TOKEN_BYTES_RANGE.0, max = d::MAX_TOKEN_BYTES_RANGE.1)))]
    pub max_token_bytes: Option<usize>,
    /// Longest decoded JOSE header in bytes.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::MAX_HEADER_BYTES), range(min = d::MAX_HEADER_BYTES_RANGE.0, max = d::MAX_HEADER_BYTES_RANGE.1)))]
    pub max_header_bytes: Option<usize>,
    /// Deepest JSON nesting in header and claims.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::MAX_JSON_DEPTH), range(min = d::MAX_JSON_DEPTH_RANGE.0, max = d::MAX_JSON_DEPTH_RANGE.1)))]
    pub max_json_depth: Option<usize>,
    /// Largest JWKS document in bytes.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::MAX_JWKS_BYTES), range(min = d::MAX_JWKS_BYTES_RANGE.0, max = d::MAX_JWKS_BYTES_RANGE.1)))]
    pub max_jwks_bytes: Option<usize>,
    /// Most keys in one JWKS.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(extend("default" = d::MAX_JWKS_KEYS), range(min = d::MAX_JWKS_KEYS_RANGE.0, max = d::MAX_JWKS_KEYS_RANGE.1)))]
    pub max_jwks_keys: Option<usize>,
}
