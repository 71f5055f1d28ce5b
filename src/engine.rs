//! The policy decision for one request: pick the rule, find the token,
//! verify it (or find it in the verified-token cache), check the claims and
//! scopes, and say what happens: allow, deny, or wait for keys.
//!
//! Everything the decision needs from outside comes in through traits: the
//! request ([`RequestView`]), the keys ([`KeyStore`]), the signature verifier
//! ([`Verifier`]) and the clock (`now`). The filter, the command-line tool and
//! the tests all run this same code.

use std::borrow::Cow;

use crate::claims::{self, ClaimOutcome, TimeClaims, TimeOutcome};
use crate::config::Unmatched;
use crate::denial::{Denial, DenyReason};
use crate::extract::{Extraction, TokenSite, extract};
use crate::jwks::{KeySelection, KeySet};
use crate::path::{self, TargetPath};
use crate::policy::{Access, KeySource, Policy, Provider, ProviderId, RuleId, TokenRequirement};
use crate::request::Request;
use crate::rules::RequestFacts;
use crate::signature::{self, Key, Verifier};
use crate::token::{self, TokenError};
use crate::token_cache::{TokenCache, VerifiedToken};
use crate::trace::{Check, Trace};

/// Longest claim value copied into a header.
pub const MAX_CLAIM_HEADER_BYTES: usize = 4096;

/// The state of a provider's keys.
pub enum KeyStatus<'k> {
    /// Keys to verify with, and their version (changes when they do).
    Ready { keys: &'k KeySet, version: u64 },
    /// No keys yet, but a fetch is under way or about to start: wait.
    Loading,
    /// No usable keys, and none expected soon.
    Unavailable { retry_after_s: u64 },
}

/// Where keys come from at decision time.
pub trait KeyStore {
    fn status(&mut self, provider: ProviderId) -> KeyStatus<'_>;

    /// A token names a `kid` the current keys lack. True when a refetch is
    /// under way (perhaps started by this call) that the request may wait
    /// for; false when the keys are final (local keys, or cooldown).
    fn request_refetch(&mut self, _provider: ProviderId) -> bool {
        false
    }
}

/// Keys from the configuration only: local JWKS are ready (version 0),
/// remote ones unavailable. What tools and tests without a host use.
pub struct ConfiguredKeys<'p>(pub &'p Policy);

impl KeyStore for ConfiguredKeys<'_> {
    fn status(&mut self, provider: ProviderId) -> KeyStatus<'_> {
        match self.0.providers.get(provider).map(|p| &p.keys) {
            Some(KeySource::Local(keys)) => KeyStatus::Ready { keys, version: 0 },
            _ => KeyStatus::Unavailable { retry_after_s: 5 },
        }
    }
}

/// What the decision needs besides the policy and the request.
pub struct Env<'e> {
    pub keys: &'e mut dyn KeyStore,
    pub verifier: &'e dyn Verifier,
    pub cache: Option<&'e mut TokenCache>,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// Whether the verified-token cache answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    NotUsed,
    Hit,
    Miss,
}

/// A request allowed through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// Headers to set from claims (`claims_to_headers`).
    pub headers: Vec<(String, String)>,
    /// Where the token was, when it must not reach the upstream.
    pub strip: Option<TokenSite>,
}

/// Hold the request until the provider's keys change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub provider: ProviderId,
    /// `None`: wait for any keys; `Some(v)`: for a version newer than `v`
    /// (a refetch after an unknown `kid`).
    pub newer_than: Option<u64>,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow(Grant),
    Deny(Denial),
    Wait(Wait),
}

/// The decision with what led to it, for stats and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub rule: Option<RuleId>,
    pub provider: Option<ProviderId>,
    pub kid: Option<String>,
    pub cache: CacheUse,
    pub outcome: Outcome,
    /// The request target to forward when `:path` was not in normal form:
    /// the normal path the rules were matched on, with the original query.
    pub rewrite: Option<Vec<u8>>,
}

/// Decides one request.
pub fn evaluate(
    policy: &Policy,
    env: &mut Env<'_>,
    req: &Request<'_>,
    trace: &mut dyn Trace,
) -> Evaluation {
    let mut eval = Evaluation {
        rule: None,
        provider: None,
        kid: None,
        cache: CacheUse::NotUsed,
        outcome: Outcome::Allow(Grant::default()),
        rewrite: None,
    };
    let target = path::check_target(req.head.target(), &policy.paths);
    let decision_path: &[u8] = match &target {
        TargetPath::Normal(p) => p,
        TargetPath::Rewrite { path, target } => {
            trace.step(Check::Path, true, &|| {
                format!(
                    "not in normal form: decided on and forwarded as {}",
                    crate::text::clip_bytes(path, 100)
                )
            });
            eval.rewrite = Some(target.clone());
            path
        }
        TargetPath::Refused(problem) => {
            trace.step(Check::Path, false, &|| problem.description().into());
            eval.outcome = Outcome::Deny(Denial::bad_path(*problem));
            return eval;
        }
    };
    let facts = RequestFacts {
        method: req.head.method(),
        path: decision_path,
        route: req.route,
    };
    let rule = policy.rules.iter().position(|r| r.matcher.matches(&facts));
    eval.rule = rule;
    let Some(r) = rule.and_then(|i| policy.rules.get(i)) else {
        trace.step(Check::Rule, policy.unmatched == Unmatched::Allow, &|| {
            format!(
                "no rule matches; unmatched requests are {}ed",
                match policy.unmatched {
                    Unmatched::Allow => "allow",
                    Unmatched::Deny => "deni",
                }
            )
        });
        if policy.unmatched == Unmatched::Deny {
            eval.outcome = Outcome::Deny(Denial::forbidden(
                DenyReason::Unmatched,
                "no policy rule allows this request",
                None,
            ));
        }
        return eval;
    };
    trace.step(Check::Rule, true, &|| format!("rule {}", r.name));
    let requirement = match &r.access {
        Access::Anonymous => {
            trace.step(Check::Token, true, &|| "anonymous access".into());
            return eval;
        }
        Access::Token(t) => t,
    };
    let Some(provider) = policy.providers.get(requirement.provider) else {
        eval.outcome = Outcome::Deny(Denial::invalid_token(
            DenyReason::Malformed,
            "no such provider",
        ));
        return eval;
    };
    eval.provider = Some(requirement.provider);
    eval.outcome = token_rule(policy, provider, requirement, env, req, trace, &mut eval);
    eval
}

fn token_rule(
    policy: &Policy,
    provider: &Provider,
    requirement: &TokenRequirement,
    env: &mut Env<'_>,
    req: &Request<'_>,
    trace: &mut dyn Trace,
    eval: &mut Evaluation,
) -> Outcome {
    let (token, site) = match extract(&provider.locations, req.head) {
        Extraction::Found { token, site } => (token, site),
        Extraction::Absent => {
            trace.step(Check::Token, false, &|| "no token in the request".into());
            return Outcome::Deny(Denial::missing());
        }
        Extraction::Multiple => {
            trace.step(Check::Token, false, &|| {
                "more than one token in the request".into()
            });
            return Outcome::Deny(Denial::invalid_request(
                "more than one token in the request",
            ));
        }
        Extraction::Unreadable(why) => {
            trace.step(Check::Token, false, &|| why.into());
            return Outcome::Deny(Denial::invalid_token(DenyReason::Malformed, why));
        }
    };
    trace.step(Check::Token, true, &|| {
        format!("found in {}", describe_site(&site))
    });
    let strip = (!provider.forward_token).then_some(site);
    let now = env.now;
    let pid = requirement.provider;

    // Keys first: the cache entry is only good for the key set it was
    // verified with.
    let uses_keys = !matches!(provider.keys, KeySource::SecretOnly);
    let status = if uses_keys {
        Some(env.keys.status(pid))
    } else {
        None
    };
    let version = match &status {
        None => Some(0),
        Some(KeyStatus::Ready { version, .. }) => Some(*version),
        Some(_) => None,
    };
    if let (Some(cache), Some(version)) = (env.cache.as_deref_mut(), version)
        && cache.enabled()
    {
        eval.cache = CacheUse::Miss;
        if let Some(vt) = cache.get(pid, &token, version, now) {
            eval.cache = CacheUse::Hit;
            eval.kid.clone_from(&vt.kid);
            trace.step(Check::Cache, true, &|| {
                "verified earlier with the same keys".into()
            });
            return authorize(provider, requirement, vt, now, true, strip, trace);
        }
    }

    let jws = match token::parse(&token, &policy.limits) {
        Ok(jws) => jws,
        Err(TokenError::Malformed(why)) => {
            trace.step(Check::Parse, false, &|| why.clone());
            return Outcome::Deny(Denial::invalid_token(
                DenyReason::Malformed,
                format!("malformed token: {why}"),
            ));
        }
        Err(e @ TokenError::UnsupportedAlgorithm(_)) => {
            trace.step(Check::Parse, false, &|| e.to_string());
            return Outcome::Deny(Denial::invalid_token(
                DenyReason::Algorithm,
                "algorithm not allowed",
            ));
        }
    };
    trace.step(Check::Parse, true, &|| "well-formed JWS".into());
    eval.kid.clone_from(&jws.header.kid);
    let alg = jws.header.alg;
    if !provider.algorithms.contains(alg) {
        trace.step(Check::Algorithm, false, &|| {
            format!("{alg} is not in the provider's algorithms")
        });
        return Outcome::Deny(Denial::invalid_token(
            DenyReason::Algorithm,
            "algorithm not allowed",
        ));
    }
    trace.step(Check::Algorithm, true, &|| alg.to_string());

    let (key, key_version) = if alg.is_symmetric() {
        match &provider.secret {
            Some(secret) => (Key::Secret(secret), 0),
            None => {
                trace.step(Check::Key, false, &|| "no shared secret".into());
                return Outcome::Deny(Denial::invalid_token(
                    DenyReason::Algorithm,
                    "algorithm not allowed",
                ));
            }
        }
    } else {
        match status {
            None | Some(KeyStatus::Unavailable { .. }) => {
                let retry = match status {
                    Some(KeyStatus::Unavailable { retry_after_s }) => retry_after_s,
                    _ => 5,
                };
                trace.step(Check::Key, false, &|| "no signing keys available".into());
                return Outcome::Deny(Denial::keys_unavailable(retry));
            }
            Some(KeyStatus::Loading) => {
                trace.step(Check::Key, false, &|| "waiting for the signing keys".into());
                return Outcome::Wait(Wait {
                    provider: pid,
                    newer_than: None,
                });
            }
            Some(KeyStatus::Ready { keys, version }) => {
                match keys.select(jws.header.kid.as_deref(), alg) {
                    KeySelection::Found(k) => {
                        trace.step(Check::Key, true, &|| {
                            format!("kid {}", k.kid.as_deref().unwrap_or("(none)"))
                        });
                        (Key::Public(k), version)
                    }
                    KeySelection::UnknownKid => {
                        // The keys are no longer borrowed here: ask for a refetch.
                        if env.keys.request_refetch(pid) {
                            trace.step(Check::Key, false, &|| {
                                "unknown kid: waiting for a refetch".into()
                            });
                            return Outcome::Wait(Wait {
                                provider: pid,
                                newer_than: Some(version),
                            });
                        }
                        trace.step(Check::Key, false, &|| "no key has the token's kid".into());
                        return Outcome::Deny(Denial::invalid_token(
                            DenyReason::UnknownKid,
                            "no key matches the token's kid",
                        ));
                    }
                    KeySelection::Ambiguous => {
                        trace.step(Check::Key, false, &|| {
                            "token has no kid and several keys fit".into()
                        });
                        return Outcome::Deny(Denial::invalid_token(
                            DenyReason::UnknownKid,
                            "token has no kid",
                        ));
                    }
                    KeySelection::Incompatible(_) => {
                        trace.step(Check::Key, false, &|| {
                            format!("the key with this kid cannot verify {alg}")
                        });
                        return Outcome::Deny(Denial::invalid_token(
                            DenyReason::Algorithm,
                            "key does not fit the algorithm",
                        ));
                    }
                }
            }
        }
    };

    if let Err(e) = signature::check(alg, key, &jws, &token, env.verifier, provider.require_low_s) {
        trace.step(Check::Signature, false, &|| e.description().into());
        return Outcome::Deny(Denial::invalid_token(
            DenyReason::Signature,
            "signature verification failed",
        ));
    }
    trace.step(Check::Signature, true, &|| "valid".into());

    let c = &jws.claims;
    let time = TimeClaims::from(c);
    if let Err(denial) = check_time(provider, &time, now, trace) {
        return Outcome::Deny(denial);
    }
    if c.iss.as_deref() != Some(provider.issuer.as_str()) {
        trace.step(Check::Issuer, false, &|| {
            format!("iss is {}", shown(c.iss.as_deref()))
        });
        return Outcome::Deny(Denial::invalid_token(
            DenyReason::Issuer,
            "issuer not accepted",
        ));
    }
    trace.step(Check::Issuer, true, &|| provider.issuer.clone());
    if !claims::audience_ok(c, &provider.audiences) {
        trace.step(Check::Audience, false, &|| match &c.aud {
            Some(aud) => format!("aud {aud:?} holds none of {:?}", provider.audiences),
            None => format!(
                "no aud, and client_id {} is not one of {:?}",
                shown(c.client_id.as_deref()),
                provider.audiences
            ),
        });
        return Outcome::Deny(Denial::invalid_token(
            DenyReason::Audience,
            "audience not accepted",
        ));
    }
    trace.step(Check::Audience, true, &|| {
        if provider.audiences.is_empty() {
            "not checked (no audiences configured)".into()
        } else if c.aud.is_some() {
            "aud accepted".into()
        } else {
            "client_id accepted as audience".into()
        }
    });
    if let Some(want) = &provider.token_use {
        if c.token_use.as_deref() != Some(want.as_str()) {
            trace.step(Check::TokenUse, false, &|| {
                format!("token_use is {}, not {want}", shown(c.token_use.as_deref()))
            });
            return Outcome::Deny(Denial::invalid_token(
                DenyReason::TokenUse,
                "token_use not accepted",
            ));
        }
        trace.step(Check::TokenUse, true, &|| want.clone());
    }
    for rule in &provider.claims {
        let outcome = rule.check(&c.all);
        trace.step(
            Check::Claim,
            matches!(outcome, ClaimOutcome::Pass | ClaimOutcome::Skipped),
            &|| format!("{}: {:?}", rule.claim, outcome),
        );
        match outcome {
            ClaimOutcome::Pass | ClaimOutcome::Skipped => {}
            ClaimOutcome::Missing => {
                return Outcome::Deny(Denial::invalid_token(
                    DenyReason::Claim,
                    format!(
                        "missing required claim {}",
                        crate::text::clip(&rule.claim, 64)
                    ),
                ));
            }
            ClaimOutcome::Mismatch => {
                return Outcome::Deny(Denial::invalid_token(
                    DenyReason::Claim,
                    format!("claim {} not accepted", crate::text::clip(&rule.claim, 64)),
                ));
            }
        }
    }

    let headers = provider
        .claims_to_headers
        .iter()
        .filter_map(|ch| {
            let value = claims::lookup(&c.all, &ch.claim)?;
            Some((
                ch.header.clone(),
                claims::header_value(value, MAX_CLAIM_HEADER_BYTES)?,
            ))
        })
        .collect();
    let verified = VerifiedToken {
        provider: pid,
        key_version,
        time,
        kid: jws.header.kid.clone(),
        scopes: c.scopes.clone(),
        claims: c.all.clone(),
        headers,
    };
    let outcome = authorize(provider, requirement, &verified, now, false, strip, trace);
    if let Some(cache) = env.cache.as_deref_mut() {
        cache.insert(&token, verified, now);
    }
    outcome
}

fn check_time(
    provider: &Provider,
    time: &TimeClaims,
    now: u64,
    trace: &mut dyn Trace,
) -> Result<(), Denial> {
    let outcome = claims::check_time(time, now, provider.clock_skew_s, provider.require_exp);
    let denial = |check: Check, reason: DenyReason, text: &'static str, trace: &mut dyn Trace| {
        trace.step(check, false, &|| {
            format!("{text} (now {now}, skew {}s)", provider.clock_skew_s)
        });
        Err(Denial::invalid_token(reason, text))
    };
    match outcome {
        TimeOutcome::Valid => {
            trace.step(Check::Expiry, true, &|| match time.exp {
                Some(exp) => format!("expires at {exp}, in {}s", exp.saturating_sub(now)),
                None => "no exp (not required)".into(),
            });
            Ok(())
        }
        TimeOutcome::Expired => denial(Check::Expiry, DenyReason::Expired, "token expired", trace),
        TimeOutcome::MissingExp => denial(
            Check::Expiry,
            DenyReason::Expired,
            "token has no exp",
            trace,
        ),
        TimeOutcome::NotYetValid => denial(
            Check::NotBefore,
            DenyReason::NotYetValid,
            "token not yet valid",
            trace,
        ),
        TimeOutcome::IssuedInFuture => denial(
            Check::IssuedAt,
            DenyReason::NotYetValid,
            "token issued in the future",
            trace,
        ),
    }
}

/// The per-request part: time (again, for cached tokens), scopes and rule
/// claims.
fn authorize(
    provider: &Provider,
    requirement: &TokenRequirement,
    vt: &VerifiedToken,
    now: u64,
    recheck_time: bool,
    strip: Option<TokenSite>,
    trace: &mut dyn Trace,
) -> Outcome {
    if recheck_time && let Err(denial) = check_time(provider, &vt.time, now, trace) {
        return Outcome::Deny(denial);
    }
    let scope_denial = || {
        Outcome::Deny(Denial::forbidden(
            DenyReason::Scope,
            "token lacks the required scope",
            requirement.scope_hint.clone(),
        ))
    };
    if !requirement.any_scopes.is_empty() {
        let ok = claims::scopes_ok(&vt.scopes, &requirement.any_scopes, &[]);
        trace.step(Check::Scopes, ok, &|| {
            format!(
                "needs any of {:?}; token has {:?}",
                requirement.any_scopes, vt.scopes
            )
        });
        if !ok {
            return scope_denial();
        }
    }
    if !requirement.all_scopes.is_empty() {
        let ok = claims::scopes_ok(&vt.scopes, &[], &requirement.all_scopes);
        trace.step(Check::AllScopes, ok, &|| {
            format!(
                "needs all of {:?}; token has {:?}",
                requirement.all_scopes, vt.scopes
            )
        });
        if !ok {
            return scope_denial();
        }
    }
    for rule in &requirement.claims {
        let outcome = rule.check(&vt.claims);
        let ok = matches!(outcome, ClaimOutcome::Pass | ClaimOutcome::Skipped);
        trace.step(Check::RuleClaim, ok, &|| {
            format!("{}: {:?}", rule.claim, outcome)
        });
        if !ok {
            return Outcome::Deny(Denial::forbidden(
                DenyReason::Claim,
                Cow::Owned(format!(
                    "claim {} not accepted",
                    crate::text::clip(&rule.claim, 64)
                )),
                requirement.scope_hint.clone(),
            ));
        }
    }
    Outcome::Allow(Grant {
        headers: vt.headers.clone(),
        strip,
    })
}

fn describe_site(site: &TokenSite) -> String {
    match site {
        TokenSite::Header(h) => format!("header {h}"),
        TokenSite::Param(p) => format!("query parameter {p}"),
        TokenSite::Cookie(c) => format!("cookie {c}"),
    }
}

fn shown(v: Option<&str>) -> String {
    v.map_or_else(
        || "absent".into(),
        |s| format!("\"{}\"", crate::text::clip(s, 80)),
    )
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
