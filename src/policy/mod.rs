//! The compiled policy: the plugin configuration checked field by field and
//! turned into what the filter evaluates per request. A refused
//! configuration names every problem it has, each at its field
//! (`providers.cognito.remote_jwks.uri`).
//!
//! | file | concern |
//! |---|---|
//! | `defaults.rs` | every default and bound, named once |
//! | `errors.rs` | problems and the fields they are at |
//! | `names.rs` | provider, rule and header names; headers never set |
//! | `provider.rs` | a token issuer |
//! | `locations.rs` | where a provider's tokens are |
//! | `keys.rs` | local and remote JWKS |
//! | `rules.rs` | a rule: its match and what it demands |
//! | `settings.rs` | limits, token cache, path normalisation |

pub mod defaults;
mod errors;
mod keys;
mod locations;
mod names;
mod provider;
mod rules;
mod settings;

use crate::claims::ClaimRule;
use crate::config::{Mode, PluginConfig, Unmatched};
use crate::extract::TokenLocation;
use crate::jwks::KeySet;
use crate::limits::Limits;
use crate::path::PathRules;
use crate::rules::Matcher;

pub use errors::{ConfigError, ConfigErrors};
pub use keys::{KeySource, RemoteJwks, split_uri};
pub use provider::{ClaimHeader, Provider};
pub use settings::CacheSettings;

use errors::Problems;
use names::{RESERVED_HEADERS, header_name};

/// Index of a provider in [`Policy::providers`].
pub type ProviderId = usize;
/// Index of a rule in [`Policy::rules`].
pub type RuleId = usize;

/// What a rule demands.
#[derive(Debug)]
pub enum Access {
    Anonymous,
    Token(TokenRequirement),
}

/// A token from one of `providers` holding the scopes and claims listed.
#[derive(Debug)]
pub struct TokenRequirement {
    /// Never empty; with several, the token's `iss` picks the one that
    /// verifies it.
    pub providers: Vec<ProviderId>,
    /// A request without a token passes (one with a token must pass).
    pub allow_missing: bool,
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
    /// Headers this filter owns: every copy a client sends is removed, so
    /// a client can never forge them.
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
    /// CORS preflights need no token.
    pub bypass_cors_preflight: bool,
    /// Every decision is published as filter state.
    pub decision_to_filter_state: bool,
    /// Whether anything is published as filter state (the decision, or a
    /// provider's claims).
    pub publishes_filter_state: bool,
}

impl Policy {
    /// Parses and checks a plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Policy, ConfigErrors> {
        let config = parse_config(bytes)?;
        Policy::from_config(&config)
    }

    /// Checks a parsed plugin configuration: every problem is reported.
    pub fn from_config(config: &PluginConfig) -> Result<Policy, ConfigErrors> {
        let mut problems = Problems::default();
        let policy = compile(config, &mut problems);
        problems.finish(policy)
    }

    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.providers.iter().position(|p| p.name == name)
    }

    /// The key sets the configuration holds: local JWKS, and the
    /// bootstrap keys of remote ones.
    pub fn configured_key_sets(&self) -> impl Iterator<Item = &KeySet> {
        self.providers.iter().filter_map(|p| match &p.keys {
            KeySource::Local(keys) => Some(keys),
            _ => p.bootstrap.as_ref(),
        })
    }

    /// The mode a decision of `rule` is carried out in (`None`: unmatched).
    pub fn mode_for(&self, rule: Option<RuleId>) -> Mode {
        rule.and_then(|r| self.rules.get(r))
            .map_or(self.mode, |r| r.mode)
    }
}

fn compile(config: &PluginConfig, problems: &mut Problems) -> Option<Policy> {
    let limits = settings::limits(config.limits.as_ref(), problems);
    let providers: Vec<Option<Provider>> = config
        .providers
        .iter()
        .map(|(name, p)| provider::compile(name, p, &limits, problems))
        .collect();
    let names: Vec<&str> = config.providers.keys().map(String::as_str).collect();
    let paths = settings::paths(config.path_normalization.as_ref());
    let route_check = config.route_check.unwrap_or(defaults::ROUTE_CHECK);
    let rules: Vec<Option<Rule>> = config
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| rules::compile(i, r, &names, config.mode, &paths, problems))
        .collect();
    if !route_check && let Some(i) = config.rules.iter().position(|r| r.match_.route.is_some()) {
        problems.refuse(
            format!("rules[{i}].match.route"),
            "a route-name rule needs \"route_check\": true and the filter's second pass in the \
             HTTP filter chain: the route Envoy forwards on is selected again after the \
             filter edits headers (README: Route-name rules)",
        );
    }
    for (i, r) in rules.iter().enumerate() {
        let Some(r) = r else { continue };
        let earlier = rules.get(..i).unwrap_or_default();
        if earlier.iter().flatten().any(|e| e.name == r.name) {
            problems.refuse(format!("rules[{i}].name"), "duplicate rule name");
        }
    }
    // A rule with several providers picks one by the token's `iss`: two
    // with one issuer would leave the choice to their order.
    for (i, r) in rules.iter().enumerate() {
        let Some(Rule {
            access: Access::Token(t),
            ..
        }) = r
        else {
            continue;
        };
        let issuers: Vec<Option<&str>> = t
            .providers
            .iter()
            .map(|pid| {
                providers
                    .get(*pid)
                    .and_then(Option::as_ref)
                    .map(|p| p.issuer.as_str())
            })
            .collect();
        let twice = issuers
            .iter()
            .enumerate()
            .any(|(j, iss)| iss.is_some() && issuers.get(..j).unwrap_or_default().contains(iss));
        if twice {
            problems.refuse(
                format!("rules[{i}].requires.providers"),
                "two of these providers have the same issuer: the token's iss could not tell \
                 which one verifies it",
            );
        }
    }
    let realm = realm(config, problems);
    let decision_header = decision_header(config, &providers, problems);
    let managed_headers = managed_headers(&providers, decision_header.as_deref(), problems);
    let token_cache = settings::token_cache(config.token_cache.as_ref(), problems);
    if !problems.is_empty() {
        return None;
    }
    let providers: Vec<Provider> = providers.into_iter().collect::<Option<_>>()?;
    let rules: Vec<Rule> = rules.into_iter().collect::<Option<_>>()?;
    let uses_route_names = rules.iter().any(|r| r.matcher.uses_route());
    let decision_to_filter_state = config
        .decision_to_filter_state
        .unwrap_or(defaults::DECISION_TO_FILTER_STATE);
    let publishes_filter_state = decision_to_filter_state
        || providers
            .iter()
            .any(|p| !p.claims_to_filter_state.is_empty());
    Some(Policy {
        providers,
        rules,
        unmatched: config.unmatched,
        mode: config.mode,
        realm: realm?,
        decision_header: decision_header?,
        token_cache,
        limits,
        managed_headers,
        uses_route_names,
        use_host_crypto: config.use_host_crypto.unwrap_or(defaults::USE_HOST_CRYPTO),
        paths,
        route_check,
        bypass_cors_preflight: config
            .bypass_cors_preflight
            .unwrap_or(defaults::BYPASS_CORS_PREFLIGHT),
        decision_to_filter_state,
        publishes_filter_state,
    })
}

fn realm(config: &PluginConfig, problems: &mut Problems) -> Option<String> {
    match &config.realm {
        None => Some(defaults::REALM.to_owned()),
        Some(r)
            if r.is_empty()
                || !r
                    .bytes()
                    .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') =>
        {
            problems.refuse(
                "realm",
                "must be printable ASCII without quotes or backslashes",
            );
            None
        }
        Some(r) => Some(r.clone()),
    }
}

/// Whether a header is where some provider reads tokens from.
fn is_token_header(providers: &[Option<Provider>], header: &str) -> bool {
    providers.iter().flatten().any(|p| {
        p.locations.iter().any(|l| {
            matches!(l, TokenLocation::Header { name, .. } if **name == *header)
                || (matches!(l, TokenLocation::Cookie(_)) && header == "cookie")
        })
    })
}

fn decision_header(
    config: &PluginConfig,
    providers: &[Option<Provider>],
    problems: &mut Problems,
) -> Option<String> {
    let header = match &config.decision_header {
        None => defaults::DECISION_HEADER.to_owned(),
        Some(h) => problems.take(header_name("decision_header", h))?,
    };
    // Like a claim header: the filter removes it from every request and
    // sets it in report mode, so it must not be a header that frames or
    // routes the request, carries credentials, or holds the token.
    if RESERVED_HEADERS.contains(&header.as_str()) || is_token_header(providers, &header) {
        problems.refuse(
            "decision_header",
            "is a header the filter must not set (framing, credentials or a token location)",
        );
        return None;
    }
    Some(header)
}

/// The headers the filter owns: every claim header and the decision header
/// (in every mode: a copy sent by a client never reaches the upstream).
fn managed_headers(
    providers: &[Option<Provider>],
    decision_header: Option<&str>,
    problems: &mut Problems,
) -> Vec<String> {
    let mut managed: Vec<String> = Vec::new();
    for p in providers.iter().flatten() {
        for (i, ch) in p.claims_to_headers.iter().enumerate() {
            let field = || format!("providers.{}.claims_to_headers[{i}].header", p.name);
            if Some(ch.header.as_str()) == decision_header {
                problems.refuse(field(), "is the decision header");
            } else if is_token_header(providers, &ch.header) {
                problems.refuse(field(), "is where tokens are read from");
            } else if !managed.contains(&ch.header) {
                managed.push(ch.header.clone());
            }
        }
    }
    if let Some(h) = decision_header
        && !managed.iter().any(|m| m == h)
    {
        managed.push(h.to_owned());
    }
    managed
}

/// Deserializes the configuration, naming the field when the JSON does not
/// fit (unknown field, wrong type). The document's shape is checked before
/// its values, so a shape problem is reported alone.
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
    de.end().map_err(|e| ConfigError::new("", e.to_string()))?;
    Ok(config)
}

#[cfg(test)]
pub(crate) mod tests;
