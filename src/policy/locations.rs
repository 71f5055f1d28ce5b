//! Where a provider's tokens may be: headers (with a scheme prefix), query
//! parameters and cookies.

use crate::config::ProviderConfig;
use crate::extract::TokenLocation;

use super::errors::Problems;
use super::names::{header_name, is_token};

/// The token locations of provider `at("")`; every problem is recorded.
pub fn token_locations(
    p: &ProviderConfig,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Vec<TokenLocation> {
    let mut locations = Vec::new();
    if p.from_headers.is_none() && p.from_params.is_empty() && p.from_cookies.is_empty() {
        locations.push(TokenLocation::bearer());
    }
    for (i, h) in p.from_headers.iter().flatten().enumerate() {
        let field = at(&format!("from_headers[{i}].name"));
        let Some(name) = problems.take(header_name(&field, &h.name)) else {
            continue;
        };
        if name == "cookie" {
            problems.refuse(field, "use from_cookies for cookies");
            continue;
        }
        if h.prefix
            .as_ref()
            .is_some_and(|p| p.trim().is_empty() || !p.is_ascii())
        {
            problems.refuse(
                at(&format!("from_headers[{i}].prefix")),
                "must be non-blank ASCII",
            );
            continue;
        }
        locations.push(TokenLocation::Header {
            name: name.into(),
            prefix: h.prefix.clone(),
        });
    }
    for (i, name) in p.from_params.iter().enumerate() {
        let bad = name.is_empty()
            || name
                .bytes()
                .any(|b| matches!(b, b'&' | b'=' | b'#' | b'?') || b <= b' ');
        if bad {
            problems.refuse(
                at(&format!("from_params[{i}]")),
                "is not a query parameter name",
            );
            continue;
        }
        locations.push(TokenLocation::Param(name.clone()));
    }
    for (i, name) in p.from_cookies.iter().enumerate() {
        if !is_token(name) {
            problems.refuse(at(&format!("from_cookies[{i}]")), "is not a cookie name");
            continue;
        }
        locations.push(TokenLocation::Cookie(name.clone()));
    }
    let listed = p.from_headers.as_ref().is_some_and(|h| !h.is_empty())
        || !p.from_params.is_empty()
        || !p.from_cookies.is_empty();
    if locations.is_empty() && !listed {
        problems.refuse(at("from_headers"), "no place to read the token from");
    }
    let twice = locations
        .iter()
        .enumerate()
        .any(|(i, l)| locations.get(..i).unwrap_or_default().contains(l));
    if twice {
        problems.refuse(
            at("from_headers"),
            "the same token location is listed twice",
        );
    }
    locations
}
