//! Step 3: the one token of the request, from the places the rule's
//! providers read tokens (several providers: every place any of them
//! reads).

use std::borrow::Cow;

use crate::denial::{Denial, DenyReason};
use crate::extract::{Extraction, TokenLocation, TokenSite, extract};
use crate::policy::{Policy, TokenRequirement};
use crate::request::RequestHead;
use crate::trace::Trace;

use super::{Stop, narrate};

/// A token found where a provider reads tokens.
pub struct Found {
    pub token: String,
    pub site: TokenSite,
}

/// The token, or `None` when the request carries none.
pub fn token(
    policy: &Policy,
    requirement: &TokenRequirement,
    head: &RequestHead,
    trace: &mut dyn Trace,
) -> Result<Option<Found>, Stop> {
    let extraction = extract(&locations(policy, requirement), head);
    narrate::token(trace, &extraction);
    match extraction {
        Extraction::Found { token, site } => Ok(Some(Found { token, site })),
        Extraction::Absent => Ok(None),
        Extraction::Multiple => {
            Err(Denial::invalid_request("more than one token in the request").into())
        }
        Extraction::Unreadable(why) => {
            Err(Denial::invalid_token(DenyReason::Malformed, why).into())
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
