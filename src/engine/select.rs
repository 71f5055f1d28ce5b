//! Which of a rule's providers a token belongs to. One provider: that
//! one. Several: a token verified before names its provider (the cache
//! entry), else the token's `iss` does — read before the signature is
//! checked, only to pick whose keys check it; a token whose `iss` is none
//! of theirs is refused with a reason of its own.

use crate::denial::{Denial, DenyReason};
use crate::policy::{Policy, ProviderId, TokenRequirement};
use crate::token;
use crate::trace::Trace;

use super::authenticate::{Found, reads};
use super::{Evaluation, Stop, narrate};

pub fn provider(
    policy: &Policy,
    requirement: &TokenRequirement,
    found: &Found,
    trace: &mut dyn Trace,
    eval: &mut Evaluation,
) -> Result<ProviderId, Stop> {
    let candidates = requirement.providers.as_slice();
    if let [only] = candidates {
        return Ok(*only);
    }
    // The first of the candidates the cache holds the token for
    // (authenticate looked, in the same order).
    let cached = found.held.map(|held| held.provider);
    let chosen = match cached {
        Some(pid) => Some(pid),
        None => match token::parse(&found.token, &policy.limits) {
            // Not a token: the first provider's checks say why.
            Err(_) => candidates.first().copied(),
            Ok(jws) => {
                let iss = jws.claims.iss.as_deref();
                candidates.iter().copied().find(|pid| {
                    policy
                        .providers
                        .get(*pid)
                        .is_some_and(|p| Some(p.issuer.as_str()) == iss)
                })
            }
        },
    };
    let Some(pid) = chosen else {
        narrate::provider(trace, policy, None);
        return Err(Denial::invalid_token(
            DenyReason::UnknownIssuer,
            "issuer is none of the rule's providers",
        )
        .into());
    };
    narrate::provider(trace, policy, Some(pid));
    // Named in stats and logs even when refused for its place.
    eval.provider = Some(pid);
    let place_ok = policy
        .providers
        .get(pid)
        .is_some_and(|p| reads(&p.locations, &found.site));
    if !place_ok {
        return Err(Denial::invalid_token(
            DenyReason::Malformed,
            "token in a place its provider does not read",
        )
        .into());
    }
    Ok(pid)
}
