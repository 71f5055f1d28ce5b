//! Step 3: the one token of the request, from the places the rule's
//! providers read tokens (several providers: every place any of them
//! reads).

use std::borrow::Cow;
use std::rc::Rc;

use crate::denial::{Denial, DenyReason};
use crate::extract::{Extraction, Located, TokenLocation, TokenSite, check, locate};
use crate::policy::{Policy, TokenRequirement};
use crate::request::RequestHead;
use crate::token_cache::{Held, TokenCache};
use crate::trace::Trace;

use super::{Stop, narrate};

/// A token found where a provider reads tokens.
pub struct Found {
    /// Shared with the cache entry when the token was verified before.
    pub token: Rc<str>,
    pub site: TokenSite,
    /// Where the cache holds it, for which provider (the first of the
    /// rule's that it was verified for).
    pub held: Option<Held>,
}

/// The token, or `None` when the request carries none.
///
/// A token whose bytes are those of a token the cache holds as verified
/// (for one of the rule's providers) is that entry's text: it passed
/// [`check`] when it was verified, so it is not scanned again. Equal bytes,
/// equal verdict; only the work is saved.
pub fn token(
    policy: &Policy,
    requirement: &TokenRequirement,
    head: &RequestHead,
    cache: Option<&TokenCache>,
    trace: &mut dyn Trace,
) -> Result<Option<Found>, Stop> {
    let (token, site) = match locate(&locations(policy, requirement), head) {
        Located::Found { token, site } => (token, site),
        Located::Absent => {
            narrate::token(trace, &Extraction::Absent);
            return Ok(None);
        }
        Located::Multiple => return Err(refuse(trace, Extraction::Multiple)),
        Located::Unreadable(why) => return Err(refuse(trace, Extraction::Unreadable(why))),
    };
    let known = cache.and_then(|c| {
        requirement
            .providers
            .iter()
            .find_map(|pid| c.find(*pid, &token))
    });
    let (text, held) = match known {
        Some((text, held)) => (text, Some(held)),
        None => match check(&token, &site) {
            Ok(text) => (Rc::from(text), None),
            Err(unfit) => return Err(refuse(trace, unfit)),
        },
    };
    narrate::found(trace, &site);
    Ok(Some(Found {
        token: text,
        site,
        held,
    }))
}

/// Narrates and refuses a request without one usable token.
fn refuse(trace: &mut dyn Trace, extraction: Extraction) -> Stop {
    narrate::token(trace, &extraction);
    match extraction {
        Extraction::Multiple => {
            Denial::invalid_request("more than one token in the request").into()
        }
        Extraction::Unreadable(why) => Denial::invalid_token(DenyReason::Malformed, why).into(),
        // Not refusals; callers pass neither.
        Extraction::Absent | Extraction::Found { .. } => {
            Denial::invalid_token(DenyReason::Malformed, "no usable token").into()
        }
    }
}

/// The places the rule's providers read tokens from, each once.
fn locations<'p>(policy: &'p Policy, requirement: &TokenRequirement) -> Cow<'p, [TokenLocation]> {
    let mut providers = requirement
        .providers
        .iter()
        .filter_map(|id| policy.providers.get(*id));
    let Some(first) = providers.next() else {
        return Cow::Borrowed(&[]);
    };
    let mut all: Option<Vec<TokenLocation>> = None;
    for p in providers {
        for l in &p.locations {
            let list = all.get_or_insert_with(|| first.locations.clone());
            if !list.contains(l) {
                list.push(l.clone());
            }
        }
    }
    match all {
        Some(list) => Cow::Owned(list),
        None => Cow::Borrowed(&first.locations),
    }
}

/// Whether `site` is one of a provider's places.
pub fn reads(locations: &[TokenLocation], site: &TokenSite) -> bool {
    locations.iter().any(|l| match (l, site) {
        (TokenLocation::Header { name, .. }, TokenSite::Header(h)) => name == h,
        (TokenLocation::Param(a), TokenSite::Param(b)) => a == b,
        (TokenLocation::Cookie(a), TokenSite::Cookie(b)) => a == b,
        _ => false,
    })
}
