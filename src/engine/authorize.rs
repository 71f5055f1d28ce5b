//! Step 5: what the rule demands of a valid token, on every request:
//! time again for a token verified earlier, the rule's scopes and claims.

use std::borrow::Cow;

use crate::claims::{self, AuthzFailure};
use crate::denial::{Denial, DenyReason};
use crate::policy::{Provider, TokenRequirement};
use crate::token_cache::VerifiedToken;
use crate::trace::Trace;

use super::{Grant, Stop, narrate, validate};

pub fn request(
    provider: &Provider,
    requirement: &TokenRequirement,
    vt: &VerifiedToken,
    now: u64,
    recheck_time: bool,
    trace: &mut dyn Trace,
) -> Result<Grant, Stop> {
    if recheck_time {
        let time = claims::check_time(&vt.time, now, provider.clock_skew_s, provider.require_exp);
        narrate::time(trace, provider, &vt.time, now, &time);
        time.map_err(|f| validate::claim_denial(provider, &f))?;
    }
    let verdict = claims::authorize(requirement, &vt.scopes, &vt.claims);
    narrate::authorization(trace, requirement, vt, &verdict);
    match verdict {
        Ok(()) => Ok(Grant {
            headers: vt.headers.clone(),
            strip: None,
        }),
        Err(AuthzFailure::AnyScope | AuthzFailure::AllScopes) => Err(Denial::forbidden(
            DenyReason::Scope,
            "token lacks the required scope",
            requirement.scope_hint.clone(),
        )
        .into()),
        Err(AuthzFailure::Claim(i, _)) => {
            let name = requirement.claims.get(i).map_or("?", |c| c.claim.as_str());
            Err(Denial::forbidden(
                DenyReason::Claim,
                Cow::Owned(format!(
                    "claim {} not accepted",
                    crate::text::clip(name, 64)
                )),
                requirement.scope_hint.clone(),
            )
            .into())
        }
    }
}
