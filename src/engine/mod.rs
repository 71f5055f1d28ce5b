//! The policy decision for one request, as a pipeline of named steps:
//!
//! 1. **path**: the path in normal form, or a refusal ([`crate::path`]);
//! 2. **rule**: the first rule that matches; none, or an anonymous one,
//!    ends the decision;
//! 3. **authenticate**: the one token of the request, from the locations of
//!    the rule's providers ([`authenticate`]); none is fine with
//!    `allow_missing`; with several providers, the token's `iss` picks the
//!    one that verifies it ([`select`]);
//! 4. **validate**: a token verified before with the same keys, or parse,
//!    algorithm, key, signature and the provider's claim checks
//!    ([`validate`]; keys may be missing: wait or 503);
//! 5. **authorize**: time again (cached tokens), the rule's scopes and
//!    claims ([`authorize`]).
//!
//! Each step returns its result or a [`Stop`] (a denial, or wait for keys);
//! what each found is told to the trace by [`narrate`], the one place that
//! words it. Everything from outside comes in through traits: the keys
//! ([`KeyStore`]), the signature verifier ([`Verifier`]) and the clock
//! (`now`). The filter, the command-line tool and the tests all run this
//! same code.

mod authenticate;
mod authorize;
mod narrate;
mod select;
mod validate;

use std::rc::Rc;

use crate::config::Unmatched;
use crate::denial::{Denial, DenyReason};
use crate::extract::TokenSite;
use crate::jwks::KeySet;
use crate::path::{self, TargetPath};
use crate::policy::{Access, KeySource, Policy, ProviderId, RuleId};
use crate::request::Request;
use crate::rules::RequestFacts;
use crate::signature::Verifier;
use crate::token_cache::TokenCache;
use crate::trace::Trace;

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

    /// The version of the keys this VM holds for `provider` and may use
    /// now, known without asking anyone (remote keys: as learned on the
    /// last tick or the last [`KeyStore::status`]). A cache hit is checked
    /// against it, so it costs no shared-store read; `None` (the default)
    /// sends every request through [`KeyStore::status`] first.
    fn held_version(&self, _provider: ProviderId) -> Option<u64> {
        None
    }

    /// A token names a `kid` the current keys lack. True when a refetch is
    /// under way (perhaps started by this call) that the request may wait
    /// for; false when the keys are final (local keys, or cooldown).
    fn request_refetch(&mut self, _provider: ProviderId) -> bool {
        false
    }
}

/// Keys from the configuration only: local JWKS, and the bootstrap keys of
/// remote ones, are ready (version 0); other remote ones unavailable. What
/// tools and tests without a host use.
pub struct ConfiguredKeys<'p>(pub &'p Policy);

impl KeyStore for ConfiguredKeys<'_> {
    fn held_version(&self, provider: ProviderId) -> Option<u64> {
        let p = self.0.providers.get(provider)?;
        (matches!(p.keys, KeySource::Local(_)) || p.bootstrap.is_some()).then_some(0)
    }

    fn status(&mut self, provider: ProviderId) -> KeyStatus<'_> {
        let p = self.0.providers.get(provider);
        match (p.map(|p| &p.keys), p.and_then(|p| p.bootstrap.as_ref())) {
            (Some(KeySource::Local(keys)), _) | (_, Some(keys)) => {
                KeyStatus::Ready { keys, version: 0 }
            }
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

/// Why a step ends the decision early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Deny(Denial),
    Wait(Wait),
}

impl From<Denial> for Stop {
    fn from(d: Denial) -> Self {
        Stop::Deny(d)
    }
}

impl From<Stop> for Outcome {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Deny(d) => Outcome::Deny(d),
            Stop::Wait(w) => Outcome::Wait(w),
        }
    }
}

/// The decision with what led to it, for stats and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub rule: Option<RuleId>,
    pub provider: Option<ProviderId>,
    /// Shared with the cache entry a hit came from: no copy per request.
    pub kid: Option<Rc<str>>,
    pub cache: CacheUse,
    pub outcome: Outcome,
    /// The request target to forward when `:path` was not in normal form:
    /// the normal path the rules were matched on, with the original query.
    pub rewrite: Option<Vec<u8>>,
    /// Claims to publish as filter state (`claims_to_filter_state` of a
    /// token that passed its provider's checks, allowed or not).
    pub claim_state: Vec<(String, String)>,
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
        claim_state: Vec::new(),
    };
    eval.outcome = match decide(policy, env, req, trace, &mut eval) {
        Ok(grant) => Outcome::Allow(grant),
        Err(stop) => stop.into(),
    };
    eval
}

/// The pipeline (see the module documentation).
fn decide(
    policy: &Policy,
    env: &mut Env<'_>,
    req: &Request<'_>,
    trace: &mut dyn Trace,
    eval: &mut Evaluation,
) -> Result<Grant, Stop> {
    let target = path::check_target(req.head.target(), &policy.paths);
    narrate::path(trace, &target);
    let decision_path: &[u8] = match &target {
        TargetPath::Normal(p) => p,
        TargetPath::Rewrite { path, target } => {
            eval.rewrite = Some(target.clone());
            path
        }
        TargetPath::Refused(problem) => return Err(Denial::bad_path(*problem).into()),
    };
    let facts = RequestFacts {
        method: req.head.method(),
        path: decision_path,
        authority: req.head.authority(),
        route: req.route,
    };
    if policy.bypass_cors_preflight && is_cors_preflight(req.head) {
        narrate::cors_preflight(trace);
        return Ok(Grant::default());
    }
    eval.rule = policy.rules.iter().position(|r| r.matcher.matches(&facts));
    let rule = eval.rule.and_then(|i| policy.rules.get(i));
    narrate::rule(trace, policy, rule);
    let Some(rule) = rule else {
        return match policy.unmatched {
            Unmatched::Allow => Ok(Grant::default()),
            Unmatched::Deny => Err(Denial::forbidden(
                DenyReason::Unmatched,
                "no policy rule allows this request",
                None,
            )
            .into()),
        };
    };
    let requirement = match &rule.access {
        Access::Anonymous => return Ok(Grant::default()),
        Access::Token(t) => t,
    };
    if let [only] = requirement.providers.as_slice() {
        eval.provider = Some(*only);
    }
    let Some(found) =
        authenticate::token(policy, requirement, req.head, env.cache.as_deref(), trace)?
    else {
        narrate::no_token(trace, requirement.allow_missing);
        return if requirement.allow_missing {
            Ok(Grant::default())
        } else {
            Err(Denial::missing().into())
        };
    };
    let pid = select::provider(policy, requirement, &found, trace, eval)?;
    let Some(provider) = policy.providers.get(pid) else {
        return Err(Denial::invalid_token(DenyReason::Malformed, "no such provider").into());
    };
    let verified = validate::token(policy, pid, &found, env, trace, eval)?;
    eval.claim_state.clone_from(&verified.token.state);
    let authorized = authorize::request(
        provider,
        requirement,
        &verified.token,
        env.now,
        verified.cached,
        trace,
    );
    // A valid token is cached whether or not this rule grants it: the next
    // request may be for another rule.
    if let Some(cache) = env.cache.as_deref_mut()
        && !verified.cached
    {
        cache.insert(Rc::clone(&found.token), verified.token, env.now);
    }
    Ok(Grant {
        strip: (!provider.forward_token).then_some(found.site),
        ..authorized?
    })
}

/// A CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method` (browsers send no credentials on it).
fn is_cors_preflight(head: &crate::request::RequestHead) -> bool {
    head.method() == b"OPTIONS"
        && head.first(b"origin").is_some()
        && head.first(b"access-control-request-method").is_some()
}

#[cfg(test)]
mod mesh_tests;
#[cfg(test)]
mod tests;
