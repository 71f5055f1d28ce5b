//! Step 3: the one token of the request, from the provider's locations.

use crate::denial::{Denial, DenyReason};
use crate::extract::{Extraction, TokenSite, extract};
use crate::policy::Provider;
use crate::request::RequestHead;
use crate::trace::Trace;

use super::{Stop, narrate};

/// A token found where the provider reads tokens.
pub struct Found {
    pub token: String,
    pub site: TokenSite,
}

pub fn token(
    provider: &Provider,
    head: &RequestHead,
    trace: &mut dyn Trace,
) -> Result<Found, Stop> {
    let extraction = extract(&provider.locations, head);
    narrate::token(trace, &extraction);
    match extraction {
        Extraction::Found { token, site } => Ok(Found { token, site }),
        Extraction::Absent => Err(Denial::missing().into()),
        Extraction::Multiple => {
            Err(Denial::invalid_request("more than one token in the request").into())
        }
        Extraction::Unreadable(why) => {
            Err(Denial::invalid_token(DenyReason::Malformed, why).into())
        }
    }
}
