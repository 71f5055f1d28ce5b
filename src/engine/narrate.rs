//! What each step of the decision found, told to the trace: the one place
//! that words the checks `jwt-policy explain` shows. Nothing here decides;
//! with [`crate::trace::NoTrace`] (the filter) nothing here runs.

use crate::algorithm::Algorithm;
use crate::claims::{AuthzFailure, ClaimFailure, TimeClaims, TimeOutcome};
use crate::config::Unmatched;
use crate::extract::{Extraction, TokenSite};
use crate::jwks::VerificationKey;
use crate::path::TargetPath;
use crate::policy::{Access, Policy, Provider, ProviderId, Rule, TokenRequirement};
use crate::signature::SignatureError;
use crate::text::{clip, clip_bytes};
use crate::token::{Claims, Jws, TokenError};
use crate::token_cache::VerifiedToken;
use crate::trace::{Check, Trace};

pub fn path(trace: &mut dyn Trace, target: &TargetPath<'_>) {
    match target {
        TargetPath::Normal(_) => {}
        TargetPath::Rewrite { path, .. } => trace.step(Check::Path, true, &|| {
            format!(
                "not in normal form: decided on and forwarded as {}",
                clip_bytes(path, 100)
            )
        }),
        TargetPath::Refused(problem) => {
            trace.step(Check::Path, false, &|| problem.description().into());
        }
    }
}

pub fn rule(trace: &mut dyn Trace, policy: &Policy, rule: Option<&Rule>) {
    match rule {
        None => trace.step(Check::Rule, policy.unmatched == Unmatched::Allow, &|| {
            format!(
                "no rule matches; unmatched requests are {}",
                match policy.unmatched {
                    Unmatched::Allow => "allowed",
                    Unmatched::Deny => "denied",
                }
            )
        }),
        Some(r) => {
            trace.step(Check::Rule, true, &|| format!("rule {}", r.name));
            if matches!(r.access, Access::Anonymous) {
                trace.step(Check::Token, true, &|| "anonymous access".into());
            }
        }
    }
}

pub fn cors_preflight(trace: &mut dyn Trace) {
    trace.step(Check::Rule, true, &|| {
        "CORS preflight (OPTIONS with Origin and Access-Control-Request-Method): \
         passed without a token (bypass_cors_preflight)"
            .into()
    });
}

pub fn no_token(trace: &mut dyn Trace, allow_missing: bool) {
    if allow_missing {
        trace.step(Check::Token, true, &|| {
            "no token; the rule allows requests without one (allow_missing)".into()
        });
    }
}

/// The provider that verifies the token, of a rule with several.
pub fn provider(trace: &mut dyn Trace, policy: &Policy, chosen: Option<ProviderId>) {
    match chosen.and_then(|pid| policy.providers.get(pid)) {
        Some(p) => trace.step(Check::Provider, true, &|| format!("provider {}", p.name)),
        None => trace.step(Check::Provider, false, &|| {
            "the token's iss is none of the rule's providers".into()
        }),
    }
}

pub fn token(trace: &mut dyn Trace, extraction: &Extraction) {
    match extraction {
        Extraction::Absent => trace.step(Check::Token, false, &|| "no token in the request".into()),
        Extraction::Multiple => trace.step(Check::Token, false, &|| {
            "more than one token in the request".into()
        }),
        Extraction::Unreadable(why) => trace.step(Check::Token, false, &|| (*why).into()),
        Extraction::Found { site, .. } => found(trace, site),
    }
}

pub fn found(trace: &mut dyn Trace, site: &TokenSite) {
    trace.step(Check::Token, true, &|| match site {
        TokenSite::Header(h) => format!("found in header {h}"),
        TokenSite::Param(p) => format!("found in query parameter {p}"),
        TokenSite::Cookie(c) => format!("found in cookie {c}"),
    });
}

pub fn cache_hit(trace: &mut dyn Trace) {
    trace.step(Check::Cache, true, &|| {
        "verified earlier with the same keys".into()
    });
}

pub fn parse(trace: &mut dyn Trace, jws: &Result<Jws<'_>, TokenError>) {
    match jws {
        Ok(_) => trace.step(Check::Parse, true, &|| "well-formed JWS".into()),
        Err(TokenError::Malformed(why)) => trace.step(Check::Parse, false, &|| why.clone()),
        Err(e) => trace.step(Check::Parse, false, &|| e.to_string()),
    }
}

pub fn algorithm(trace: &mut dyn Trace, alg: Algorithm, allowed: bool) {
    if allowed {
        trace.step(Check::Algorithm, true, &|| alg.to_string());
    } else {
        trace.step(Check::Algorithm, false, &|| {
            format!("{alg} is not in the provider's algorithms")
        });
    }
}

pub fn secret(trace: &mut dyn Trace, present: bool) {
    if !present {
        trace.step(Check::Key, false, &|| "no shared secret".into());
    }
}

pub fn keys_unavailable(trace: &mut dyn Trace) {
    trace.step(Check::Key, false, &|| "no signing keys available".into());
}

pub fn keys_loading(trace: &mut dyn Trace) {
    trace.step(Check::Key, false, &|| "waiting for the signing keys".into());
}

pub fn key_found(trace: &mut dyn Trace, key: &VerificationKey) {
    trace.step(Check::Key, true, &|| {
        format!("kid {}", key.kid.as_deref().unwrap_or("(none)"))
    });
}

pub fn unknown_kid(trace: &mut dyn Trace, refetching: bool) {
    if refetching {
        trace.step(Check::Key, false, &|| {
            "unknown kid: waiting for a refetch".into()
        });
    } else {
        trace.step(Check::Key, false, &|| "no key has the token's kid".into());
    }
}

pub fn ambiguous_key(trace: &mut dyn Trace) {
    trace.step(Check::Key, false, &|| {
        "token has no kid and several keys fit".into()
    });
}

pub fn incompatible_key(trace: &mut dyn Trace, alg: Algorithm) {
    trace.step(Check::Key, false, &|| {
        format!("the key with this kid cannot verify {alg}")
    });
}

pub fn signature(trace: &mut dyn Trace, checked: &Result<(), SignatureError>) {
    match checked {
        Ok(()) => trace.step(Check::Signature, true, &|| "valid".into()),
        Err(e) => trace.step(Check::Signature, false, &|| e.description().into()),
    }
}

/// The time checks, passed or not.
pub fn time(
    trace: &mut dyn Trace,
    provider: &Provider,
    time: &TimeClaims,
    now: u64,
    verdict: &Result<(), ClaimFailure>,
) {
    let skew = provider.clock_skew_s;
    let failed = |check: Check, text: &'static str, trace: &mut dyn Trace| {
        trace.step(check, false, &|| {
            format!("{text} (now {now}, skew {skew}s)")
        });
    };
    match verdict {
        Err(ClaimFailure::Time(TimeOutcome::Expired)) => {
            failed(Check::Expiry, "token expired", trace)
        }
        Err(ClaimFailure::Time(TimeOutcome::MissingExp)) => {
            failed(Check::Expiry, "token has no exp", trace);
        }
        Err(ClaimFailure::Time(TimeOutcome::NotYetValid)) => {
            failed(Check::NotBefore, "token not yet valid", trace);
        }
        Err(ClaimFailure::Time(TimeOutcome::IssuedInFuture)) => {
            failed(Check::IssuedAt, "token issued in the future", trace);
        }
        _ => trace.step(Check::Expiry, true, &|| match time.exp {
            Some(exp) => format!("expires at {exp}, in {}s", exp.saturating_sub(now)),
            None => "no exp (not required)".into(),
        }),
    }
}

fn shown(v: Option<&str>) -> String {
    v.map_or_else(|| "absent".into(), |s| format!("\"{}\"", clip(s, 80)))
}

/// The provider's claim checks in their order, up to the one that failed.
pub fn claims(
    trace: &mut dyn Trace,
    provider: &Provider,
    c: &Claims,
    now: u64,
    verdict: &Result<(), ClaimFailure>,
) {
    if !trace.keeps() {
        return;
    }
    time(trace, provider, &TimeClaims::from(c), now, verdict);
    if matches!(verdict, Err(ClaimFailure::Time(_))) {
        return;
    }
    if matches!(verdict, Err(ClaimFailure::Issuer)) {
        trace.step(Check::Issuer, false, &|| {
            format!("iss is {}", shown(c.iss.as_deref()))
        });
        return;
    }
    trace.step(Check::Issuer, true, &|| provider.issuer.clone());
    if matches!(verdict, Err(ClaimFailure::Audience)) {
        trace.step(Check::Audience, false, &|| match &c.aud {
            Some(aud) => format!("aud {aud:?} holds none of {:?}", provider.audiences),
            None => format!(
                "no aud, and client_id {} is not one of {:?}",
                shown(c.client_id.as_deref()),
                provider.audiences
            ),
        });
        return;
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
        if matches!(verdict, Err(ClaimFailure::TokenUse)) {
            trace.step(Check::TokenUse, false, &|| {
                format!("token_use is {}, not {want}", shown(c.token_use.as_deref()))
            });
            return;
        }
        trace.step(Check::TokenUse, true, &|| want.clone());
    }
    let failed_at = match verdict {
        Err(ClaimFailure::Claim(i, _)) => Some(*i),
        _ => None,
    };
    for (i, rule) in provider.claims.iter().enumerate() {
        let outcome = rule.check(&c.all);
        let passed = failed_at != Some(i);
        trace.step(Check::Claim, passed, &|| {
            format!("{}: {:?}", rule.claim, outcome)
        });
        if !passed {
            return;
        }
    }
}

/// The rule's checks in their order, up to the one that failed.
pub fn authorization(
    trace: &mut dyn Trace,
    requirement: &TokenRequirement,
    vt: &VerifiedToken,
    verdict: &Result<(), AuthzFailure>,
) {
    if !trace.keeps() {
        return;
    }
    if !requirement.any_scopes.is_empty() {
        let ok = !matches!(verdict, Err(AuthzFailure::AnyScope));
        trace.step(Check::Scopes, ok, &|| {
            format!(
                "needs any of {:?}; token has {:?}",
                requirement.any_scopes, vt.scopes
            )
        });
        if !ok {
            return;
        }
    }
    if !requirement.all_scopes.is_empty() {
        let ok = !matches!(verdict, Err(AuthzFailure::AllScopes));
        trace.step(Check::AllScopes, ok, &|| {
            format!(
                "needs all of {:?}; token has {:?}",
                requirement.all_scopes, vt.scopes
            )
        });
        if !ok {
            return;
        }
    }
    let failed_at = match verdict {
        Err(AuthzFailure::Claim(i, _)) => Some(*i),
        _ => None,
    };
    for (i, rule) in requirement.claims.iter().enumerate() {
        let outcome = rule.check(&vt.claims);
        let passed = failed_at != Some(i);
        trace.step(Check::RuleClaim, passed, &|| {
            format!("{}: {:?}", rule.claim, outcome)
        });
        if !passed {
            return;
        }
    }
}
