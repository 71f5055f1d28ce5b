//! Step 4: a valid token of the provider. One verified before with the
//! same keys comes from the cache; otherwise it is parsed, its algorithm
//! and key are checked, its signature verified, and its claims put through
//! the provider's checks. Keys may be missing: wait for them, or 503.

use std::rc::Rc;

use crate::claims::{self, ClaimFailure, ClaimOutcome, TimeClaims, TimeOutcome};
use crate::denial::{Denial, DenyReason};
use crate::jwks::KeySelection;
use crate::policy::{KeySource, Policy, Provider, ProviderId};
use crate::signature::{self, Key};
use crate::token::{self, Jws, TokenError};
use crate::token_cache::{TokenCache, VerifiedToken};
use crate::trace::Trace;

use super::authenticate::Found;
use super::{CacheUse, Env, Evaluation, KeyStatus, MAX_CLAIM_HEADER_BYTES, Stop, Wait, narrate};

/// A token that passed every check that does not depend on the time or
/// the rule.
pub struct Verified {
    pub token: Rc<VerifiedToken>,
    /// From the cache (time is checked again by the next step).
    pub cached: bool,
}

pub fn token(
    policy: &Policy,
    pid: ProviderId,
    found: &Found,
    env: &mut Env<'_>,
    trace: &mut dyn Trace,
    eval: &mut Evaluation,
) -> Result<Verified, Stop> {
    let Some(provider) = policy.providers.get(pid) else {
        return Err(Denial::invalid_token(DenyReason::Malformed, "no such provider").into());
    };
    // A cache entry is only good for the key set it was verified with. A
    // hit is checked against the version of the keys this VM holds, which
    // asks nothing of the host; only a token that must be verified asks
    // for the keys' status (remote keys: a shared-store read, which also
    // picks up keys another VM fetched since the last tick).
    let uses_keys = !matches!(provider.keys, KeySource::SecretOnly);
    let held = if uses_keys {
        env.keys.held_version(pid)
    } else {
        Some(0)
    };
    if let Some(hit) = cached(
        pid,
        found,
        held,
        env.cache.as_deref_mut(),
        env.now,
        trace,
        eval,
    ) {
        return Ok(hit);
    }
    let status = uses_keys.then(|| env.keys.status(pid));
    let version = match &status {
        None => Some(0),
        Some(KeyStatus::Ready { version, .. }) => Some(*version),
        Some(_) => None,
    };
    if version != held
        && let Some(hit) = cached(
            pid,
            found,
            version,
            env.cache.as_deref_mut(),
            env.now,
            trace,
            eval,
        )
    {
        return Ok(hit);
    }

    let jws = token::parse(&found.token, &policy.limits);
    narrate::parse(trace, &jws);
    let jws = jws.map_err(|e| match e {
        TokenError::Malformed(why) => {
            Denial::invalid_token(DenyReason::Malformed, format!("malformed token: {why}"))
        }
        TokenError::UnsupportedAlgorithm(_) => {
            Denial::invalid_token(DenyReason::Algorithm, "algorithm not allowed")
        }
    })?;
    eval.kid = jws.header.kid.as_deref().map(Rc::from);
    let alg = jws.header.alg;
    let allowed = provider.algorithms.contains(alg);
    narrate::algorithm(trace, alg, allowed);
    if !allowed {
        return Err(Denial::invalid_token(DenyReason::Algorithm, "algorithm not allowed").into());
    }

    let (key, key_version) = if alg.is_symmetric() {
        narrate::secret(trace, provider.secret.is_some());
        match &provider.secret {
            Some(secret) => (Key::Secret(secret), 0),
            None => {
                return Err(
                    Denial::invalid_token(DenyReason::Algorithm, "algorithm not allowed").into(),
                );
            }
        }
    } else {
        match status {
            None | Some(KeyStatus::Unavailable { .. }) => {
                let retry = match status {
                    Some(KeyStatus::Unavailable { retry_after_s }) => retry_after_s,
                    _ => 5,
                };
                narrate::keys_unavailable(trace);
                return Err(Denial::keys_unavailable(retry).into());
            }
            Some(KeyStatus::Loading) => {
                narrate::keys_loading(trace);
                return Err(Stop::Wait(Wait {
                    provider: pid,
                    newer_than: None,
                }));
            }
            Some(KeyStatus::Ready { keys, version }) => {
                let selection = keys.select(jws.header.kid.as_deref(), alg);
                match selection {
                    KeySelection::Found(k) => {
                        narrate::key_found(trace, k);
                        (Key::Public(k), version)
                    }
                    KeySelection::UnknownKid => {
                        // The keys are no longer borrowed: ask for a refetch.
                        let refetching = env.keys.request_refetch(pid);
                        narrate::unknown_kid(trace, refetching);
                        if refetching {
                            return Err(Stop::Wait(Wait {
                                provider: pid,
                                newer_than: Some(version),
                            }));
                        }
                        return Err(Denial::invalid_token(
                            DenyReason::UnknownKid,
                            "no key matches the token's kid",
                        )
                        .into());
                    }
                    KeySelection::Ambiguous => {
                        narrate::ambiguous_key(trace);
                        return Err(Denial::invalid_token(
                            DenyReason::UnknownKid,
                            "token has no kid",
                        )
                        .into());
                    }
                    KeySelection::Incompatible(_) => {
                        narrate::incompatible_key(trace, alg);
                        return Err(Denial::invalid_token(
                            DenyReason::Algorithm,
                            "key does not fit the algorithm",
                        )
                        .into());
                    }
                }
            }
        }
    };

    let checked = signature::check(
        alg,
        key,
        &jws,
        &found.token,
        env.verifier,
        provider.require_low_s,
    );
    narrate::signature(trace, &checked);
    checked.map_err(|_| {
        Denial::invalid_token(DenyReason::Signature, "signature verification failed")
    })?;

    let verdict = claims::validate(provider, &jws.claims, env.now);
    narrate::claims(trace, provider, &jws.claims, env.now, &verdict);
    verdict.map_err(|f| claim_denial(provider, &f))?;
    Ok(Verified {
        token: Rc::new(verified(pid, key_version, provider, eval.kid.clone(), jws)),
        cached: false,
    })
}

/// The cache's entry for the token, when it was verified with keys of
/// `version` (`None`: no keys to check it against) and is still fresh.
fn cached(
    pid: ProviderId,
    found: &Found,
    version: Option<u64>,
    cache: Option<&mut TokenCache>,
    now: u64,
    trace: &mut dyn Trace,
    eval: &mut Evaluation,
) -> Option<Verified> {
    let version = version?;
    let cache = cache.filter(|c| c.enabled())?;
    eval.cache = CacheUse::Miss;
    let vt = match found.held {
        Some(held) if held.provider == pid => cache.get_held(held, &found.token, version, now),
        _ => cache.get(pid, &found.token, version, now),
    }?;
    eval.cache = CacheUse::Hit;
    eval.kid.clone_from(&vt.kid);
    narrate::cache_hit(trace);
    Some(Verified {
        token: vt,
        cached: true,
    })
}

/// `kid`: the token's, as the decision already holds it (shared, not
/// copied again).
fn verified(
    pid: ProviderId,
    key_version: u64,
    provider: &Provider,
    kid: Option<Rc<str>>,
    jws: Jws<'_>,
) -> VerifiedToken {
    let c = jws.claims;
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
    let state = provider
        .claims_to_filter_state
        .iter()
        .filter_map(|(claim, name)| {
            let value = claims::lookup(&c.all, claim)?;
            Some((
                name.clone(),
                claims::header_value(value, MAX_CLAIM_HEADER_BYTES)?,
            ))
        })
        .collect();
    VerifiedToken {
        provider: pid,
        key_version,
        time: TimeClaims::from(&c),
        kid,
        scopes: c.scopes,
        claims: c.all,
        headers,
        state,
    }
}

/// The 401 for a token its provider's claim checks refuse.
pub fn claim_denial(provider: &Provider, failure: &ClaimFailure) -> Denial {
    let (reason, text): (DenyReason, &'static str) = match failure {
        ClaimFailure::Time(TimeOutcome::Expired) => (DenyReason::Expired, "token expired"),
        ClaimFailure::Time(TimeOutcome::MissingExp) => (DenyReason::Expired, "token has no exp"),
        ClaimFailure::Time(TimeOutcome::NotYetValid) => {
            (DenyReason::NotYetValid, "token not yet valid")
        }
        ClaimFailure::Time(TimeOutcome::IssuedInFuture) => {
            (DenyReason::NotYetValid, "token issued in the future")
        }
        ClaimFailure::Issuer => (DenyReason::Issuer, "issuer not accepted"),
        ClaimFailure::Audience => (DenyReason::Audience, "audience not accepted"),
        ClaimFailure::TokenUse => (DenyReason::TokenUse, "token_use not accepted"),
        ClaimFailure::Claim(i, outcome) => {
            let name = provider.claims.get(*i).map_or("?", |c| c.claim.as_str());
            let name = crate::text::clip(name, 64);
            let text = if *outcome == ClaimOutcome::Missing {
                format!("missing required claim {name}")
            } else {
                format!("claim {name} not accepted")
            };
            return Denial::invalid_token(DenyReason::Claim, text);
        }
    };
    Denial::invalid_token(reason, text)
}
