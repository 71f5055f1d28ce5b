//! A token issuer as configured: issuer, audiences, algorithms, keys or
//! secret, time tolerance, where its tokens are, the claims they must carry
//! and the claims copied into headers.

use crate::algorithm::{Algorithm, AlgorithmSet};
use crate::b64;
use crate::claims::ClaimRule;
use crate::config::{ClaimConfig, ProviderConfig};
use crate::extract::TokenLocation;
use crate::jwks::KeySet;
use crate::limits::Limits;
use crate::text::clip;

use super::defaults as d;
use super::errors::Problems;
use super::keys::{self, KeySource};
use super::locations::token_locations;
use super::names::{RESERVED_HEADERS, header_name, is_name};

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
    /// `(claim, filter state name)`: published as `wasm.jwt_policy.claim.<name>`.
    pub claims_to_filter_state: Vec<(String, String)>,
    pub forward_token: bool,
    /// With a remote JWKS: keys from the configuration that serve until
    /// the first fetch, and whenever no fetched keys are usable.
    pub bootstrap: Option<KeySet>,
}

/// Provider `name`; every problem is recorded, `None` when there was one.
pub fn compile(
    name: &str,
    p: &ProviderConfig,
    limits: &Limits,
    problems: &mut Problems,
) -> Option<Provider> {
    let at = |field: &str| format!("providers.{name}.{field}");
    let before = problems.len();
    if !is_name(name) {
        problems.refuse(
            format!("providers.{}", clip(name, d::MAX_NAME_LEN)),
            format!(
                "provider names use letters, digits, '_' and '-' (at most {})",
                d::MAX_NAME_LEN
            ),
        );
    }
    if p.issuer.is_empty() {
        problems.refuse(at("issuer"), "must not be empty");
    }
    for (i, a) in p.audiences.iter().enumerate() {
        if a.is_empty() {
            problems.refuse(at(&format!("audiences[{i}]")), "must not be empty");
        }
    }
    if p.token_use.as_deref() == Some("") {
        problems.refuse(at("token_use"), "must not be empty");
    }
    let algorithms = algorithms(p, &at, problems);
    let secret = algorithms
        .as_ref()
        .and_then(|algs| shared_secret(p, algs, &at, problems));
    let keys = algorithms
        .as_ref()
        .and_then(|algs| key_source(p, algs, limits, &at, problems));
    let bootstrap = match (&p.local_jwks, &p.remote_jwks) {
        (Some(doc), Some(_)) => problems.take(keys::local_jwks(&at("local_jwks"), doc, limits)),
        _ => None,
    };

    let clock_skew_s = p.clock_skew_s.unwrap_or(d::CLOCK_SKEW_S);
    if clock_skew_s > d::MAX_CLOCK_SKEW_S {
        problems.refuse(
            at("clock_skew_s"),
            format!("must be at most {}", d::MAX_CLOCK_SKEW_S),
        );
    }
    let locations = token_locations(p, &at, problems);
    let claims = claim_rules(&at("claims"), &p.claims, problems);
    let claims_to_headers = claim_headers(p, &at, problems);
    let claims_to_filter_state = claim_filter_state(p, &at, problems);
    if problems.len() != before {
        return None;
    }
    Some(Provider {
        name: name.to_owned(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        token_use: p.token_use.clone(),
        algorithms: algorithms?,
        keys: keys?,
        secret: secret.flatten(),
        clock_skew_s,
        require_exp: p.require_exp.unwrap_or(d::REQUIRE_EXP),
        require_low_s: p.require_low_s.unwrap_or(d::REQUIRE_LOW_S),
        locations,
        claims,
        claims_to_headers,
        claims_to_filter_state,
        forward_token: p.forward_token.unwrap_or(d::FORWARD_TOKEN),
        bootstrap,
    })
}

fn algorithms(
    p: &ProviderConfig,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Option<AlgorithmSet> {
    let Some(names) = &p.algorithms else {
        return Some(Algorithm::ASYMMETRIC.into_iter().collect());
    };
    if names.is_empty() {
        problems.refuse(at("algorithms"), "must not be empty");
        return None;
    }
    let mut set = AlgorithmSet::default();
    let mut ok = true;
    for (i, n) in names.iter().enumerate() {
        match Algorithm::from_name(n) {
            Some(a) => set.insert(a),
            None if n.eq_ignore_ascii_case("none") => {
                problems.refuse(at(&format!("algorithms[{i}]")), "\"none\" is never allowed");
                ok = false;
            }
            None => {
                problems.refuse(
                    at(&format!("algorithms[{i}]")),
                    format!("unknown algorithm \"{}\"", clip(n, 20)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(set)
}

/// The HMAC secret: `Some(None)` when none is needed.
fn shared_secret(
    p: &ProviderConfig,
    algorithms: &AlgorithmSet,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Option<Option<Vec<u8>>> {
    let field = at("shared_secret_base64");
    let wants_hmac = algorithms.iter().any(Algorithm::is_symmetric);
    match (&p.shared_secret_base64, wants_hmac) {
        (None, false) => Some(None),
        (None, true) => {
            problems.refuse(field, "required when algorithms include HS256/384/512");
            None
        }
        (Some(_), false) => {
            problems.refuse(field, "given, but algorithms include no HS algorithm");
            None
        }
        (Some(s), true) => {
            let Some(bytes) = b64::decode_standard(s) else {
                problems.refuse(field, "is not base64");
                return None;
            };
            let needed = algorithms
                .iter()
                .filter(|a| a.is_symmetric())
                .map(|a| a.hash().output_len())
                .max()
                .unwrap_or(32);
            if bytes.len() < needed {
                problems.refuse(
                    field,
                    format!(
                        "must hold at least {needed} bytes for the HS algorithms allowed (RFC 7518 §3.2)"
                    ),
                );
                return None;
            }
            Some(Some(bytes))
        }
    }
}

fn key_source(
    p: &ProviderConfig,
    algorithms: &AlgorithmSet,
    limits: &Limits,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Option<KeySource> {
    let wants_keys = algorithms.iter().any(|a| !a.is_symmetric());
    match (&p.local_jwks, &p.remote_jwks) {
        (None, None) if wants_keys => {
            problems.refuse(
                at("local_jwks"),
                "one of local_jwks or remote_jwks is required for asymmetric algorithms",
            );
            None
        }
        (None, None) => Some(KeySource::SecretOnly),
        (Some(doc), None) => problems
            .take(keys::local_jwks(&at("local_jwks"), doc, limits))
            .map(KeySource::Local),
        // With local_jwks too, those are bootstrap keys (see `compile`).
        (_, Some(r)) => keys::remote_jwks(&at("remote_jwks"), r, problems).map(KeySource::Remote),
    }
}

fn claim_headers(
    p: &ProviderConfig,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Vec<ClaimHeader> {
    let mut out: Vec<ClaimHeader> = Vec::new();
    for (i, ch) in p.claims_to_headers.iter().enumerate() {
        if ch.claim.is_empty() {
            problems.refuse(
                at(&format!("claims_to_headers[{i}].claim")),
                "must not be empty",
            );
        }
        let field = at(&format!("claims_to_headers[{i}].header"));
        let Some(header) = problems.take(header_name(&field, &ch.header)) else {
            continue;
        };
        if RESERVED_HEADERS.contains(&header.as_str()) {
            problems.refuse(field, "is a header the filter must not set");
        } else if out.iter().any(|c| c.header == header) {
            problems.refuse(field, "is set twice");
        } else {
            out.push(ClaimHeader {
                claim: ch.claim.clone(),
                header,
            });
        }
    }
    out
}

fn claim_filter_state(
    p: &ProviderConfig,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, c) in p.claims_to_filter_state.iter().enumerate() {
        if c.claim.is_empty() {
            problems.refuse(
                at(&format!("claims_to_filter_state[{i}].claim")),
                "must not be empty",
            );
        }
        let field = at(&format!("claims_to_filter_state[{i}].name"));
        if !is_name(&c.name) {
            problems.refuse(field, "names use letters, digits, '_' and '-'");
        } else if out.iter().any(|(_, n)| *n == c.name) {
            problems.refuse(field, "is published twice");
        } else {
            out.push((c.claim.clone(), c.name.clone()));
        }
    }
    out
}

/// Claim checks (`claims` of a provider or of a rule's `requires`).
pub fn claim_rules(field: &str, claims: &[ClaimConfig], problems: &mut Problems) -> Vec<ClaimRule> {
    let mut out = Vec::with_capacity(claims.len());
    for (i, c) in claims.iter().enumerate() {
        let before = problems.len();
        if c.claim.is_empty() {
            problems.refuse(format!("{field}[{i}].claim"), "must not be empty");
        }
        match &c.one_of {
            Some(values) if values.is_empty() => {
                problems.refuse(format!("{field}[{i}].one_of"), "must not be empty");
            }
            None if c.required == Some(false) => problems.refuse(
                format!("{field}[{i}].one_of"),
                "required when the claim is not required (the check would check nothing)",
            ),
            _ => {}
        }
        for (j, v) in c.one_of.iter().flatten().enumerate() {
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                problems.refuse(
                    format!("{field}[{i}].one_of[{j}]"),
                    "must be a string, number or boolean",
                );
            }
        }
        if problems.len() == before {
            out.push(ClaimRule {
                claim: c.claim.clone(),
                one_of: c.one_of.clone(),
                required: c.required.unwrap_or(true),
            });
        }
    }
    out
}
