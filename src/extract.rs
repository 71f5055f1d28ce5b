//! Finding the token in a request: configured headers (with a scheme
//! prefix, `Bearer ` by default), query parameters and cookies.
//!
//! RFC 6750 §2: a client uses one method per request. A token found in two
//! places, twice in one place, or in a header Envoy merged from several
//! (`Bearer a,Bearer b`) is refused as an invalid request rather than
//! guessing which one counts. Every value of a location is read: a second
//! `x-jwt` line, its `x_jwt` twin, or a token in a second `Cookie` line is a
//! second token, whichever of them an upstream would pick.

use std::borrow::Cow;
use std::sync::Arc;

use crate::percent::decode_form;
use crate::request::RequestHead;
use crate::words;

/// A place a provider's token may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// Lower-case header name and an optional prefix (compared ASCII
    /// case-insensitively; spaces after it are skipped).
    Header {
        /// Shared with every [`TokenSite::Header`] found there (`Arc`:
        /// a policy is `Sync`; on wasm32 the count is a plain add).
        name: Arc<str>,
        prefix: Option<String>,
    },
    Param(String),
    Cookie(String),
}

impl TokenLocation {
    /// `Authorization: Bearer <token>`.
    pub fn bearer() -> TokenLocation {
        TokenLocation::Header {
            name: "authorization".into(),
            prefix: Some("Bearer ".into()),
        }
    }
}

/// Where a token was found, so it can be removed when not forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSite {
    Header(Arc<str>),
    Param(String),
    Cookie(String),
}

/// The result of looking for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extraction {
    Absent,
    Found {
        token: String,
        site: TokenSite,
    },
    /// More than one token, or one location used twice.
    Multiple,
    /// A location holds something that cannot be a token (not ASCII, empty).
    Unreadable(&'static str),
}

/// Whether header entry `name` is header `wanted` (lower case) or a twin of
/// it with `_` for `-` (or in other case): CGI and WSGI servers hand both to
/// applications under one name (`HTTP_X_CLIENT_ID`), so a twin counts as
/// the header itself.
pub fn is_header_or_twin(name: &[u8], wanted: &str) -> bool {
    name.len() == wanted.len()
        && name.iter().zip(wanted.bytes()).all(|(a, b)| {
            let a = a.to_ascii_lowercase();
            a == b || (a == b'_' && b == b'-')
        })
}

/// Looks for the token in every value of every location and checks it;
/// see the module documentation. [`locate`] and [`check`] in one.
pub fn extract(locations: &[TokenLocation], head: &RequestHead) -> Extraction {
    match locate(locations, head) {
        Located::Absent => Extraction::Absent,
        Located::Multiple => Extraction::Multiple,
        Located::Unreadable(why) => Extraction::Unreadable(why),
        Located::Found { token, site } => match check(&token, &site) {
            Ok(token) => Extraction::Found {
                token: token.to_owned(),
                site,
            },
            Err(unfit) => unfit,
        },
    }
}

/// The one token of a request, as bytes not yet [`check`]ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located<'h> {
    Absent,
    Found {
        /// Borrowed from the request for a header; decoded for a query
        /// parameter or cookie.
        token: Cow<'h, [u8]>,
        site: TokenSite,
    },
    /// More than one token, or one location used twice.
    Multiple,
    /// Found, but empty.
    Unreadable(&'static str),
}

/// Finds the token in every value of every location: exactly one, or why
/// not. What the token's own bytes must be is [`check`]'s, so a token the
/// cache holds as verified need not be scanned again (engine::authenticate).
pub fn locate<'h>(locations: &[TokenLocation], head: &'h RequestHead) -> Located<'h> {
    let mut found: Option<(Cow<'h, [u8]>, TokenSite)> = None;
    // Records one token; false when it is not the first.
    let mut record = |token: Cow<'h, [u8]>, site: TokenSite| -> bool {
        if found.is_some() {
            return false;
        }
        found = Some((token, site));
        true
    };
    for location in locations {
        match location {
            TokenLocation::Header { name, prefix } => {
                for (entry, value) in head.iter() {
                    if !is_header_or_twin(entry, name) {
                        continue;
                    }
                    let Some(token) = strip_prefix(value, prefix.as_deref()) else {
                        continue;
                    };
                    if !record(Cow::Borrowed(token), TokenSite::Header(Arc::clone(name))) {
                        return Located::Multiple;
                    }
                }
            }
            TokenLocation::Param(name) => {
                for v in query_values(head.target(), name) {
                    if !record(Cow::Owned(v), TokenSite::Param(name.clone())) {
                        return Located::Multiple;
                    }
                }
            }
            TokenLocation::Cookie(name) => {
                for header in head.values(b"cookie") {
                    for v in cookie_values(header, name) {
                        if !record(Cow::Owned(v), TokenSite::Cookie(name.clone())) {
                            return Located::Multiple;
                        }
                    }
                }
            }
        }
    }
    match found {
        None => Located::Absent,
        Some((token, _)) if token.is_empty() => Located::Unreadable("empty token"),
        Some((token, site)) => Located::Found { token, site },
    }
}

/// What a located token's bytes must be to be read as a token: ASCII, and
/// for a header no comma (hosts join repeated headers with commas;
/// base64url never contains one, so it is two tokens). The refusal is
/// [`Extraction::Multiple`] or [`Extraction::Unreadable`].
pub fn check<'t>(token: &'t [u8], site: &TokenSite) -> Result<&'t str, Extraction> {
    let scan = words::scan(token);
    if scan.comma && matches!(site, TokenSite::Header(_)) {
        return Err(Extraction::Multiple);
    }
    if !scan.ascii {
        return Err(Extraction::Unreadable("token is not ASCII"));
    }
    std::str::from_utf8(token).map_err(|_| Extraction::Unreadable("token is not ASCII"))
}

fn strip_prefix<'v>(value: &'v [u8], prefix: Option<&str>) -> Option<&'v [u8]> {
    let value = trim(value);
    let rest = match prefix {
        None => value,
        Some(prefix) => {
            let p = prefix.trim_end().as_bytes();
            let head = value.get(..p.len())?;
            if !head.eq_ignore_ascii_case(p) {
                return None;
            }
            let rest = value.get(p.len()..)?;
            // "Bearer" must be followed by a space (or be the whole value,
            // which leaves an empty token), not "Bearerxyz".
            if prefix.ends_with(' ') && !rest.is_empty() && !rest.starts_with(b" ") {
                return None;
            }
            rest
        }
    };
    Some(trim(value_without_leading_spaces(rest)))
}

fn value_without_leading_spaces(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    v.get(start..).unwrap_or_default()
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// A request target cut at its fragment: `(before '#', from '#' on)`. A `?`
/// after the `#` is part of the fragment, not a query.
fn split_fragment(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|b| *b == b'#') {
        Some(f) => target.split_at(f),
        None => (target, &[]),
    }
}

/// Values of query parameter `name` in a request target, percent-decoded.
pub fn query_values<'t>(target: &'t [u8], name: &'t str) -> impl Iterator<Item = Vec<u8>> + 't {
    let (target, _) = split_fragment(target);
    let query = target
        .iter()
        .position(|b| *b == b'?')
        .and_then(|i| target.get(i.saturating_add(1)..))
        .unwrap_or_default();
    query.split(|b| *b == b'&').filter_map(move |pair| {
        let (k, v) = split_once(pair, b'=');
        (decode_form(k) == name.as_bytes()).then(|| decode_form(v))
    })
}

/// The request target with every `name` parameter removed.
pub fn remove_query_param(target: &[u8], name: &str) -> Vec<u8> {
    let (before, fragment) = split_fragment(target);
    let Some(q) = before.iter().position(|b| *b == b'?') else {
        return target.to_vec();
    };
    let (path, rest) = before.split_at(q);
    let query = rest.get(1..).unwrap_or_default();
    let kept: Vec<&[u8]> = query
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty() && decode_form(split_once(pair, b'=').0) != name.as_bytes())
        .collect();
    let mut out = path.to_vec();
    if !kept.is_empty() {
        out.push(b'?');
        out.extend_from_slice(&kept.join(&b'&'));
    }
    out.extend_from_slice(fragment);
    out
}

/// Values of cookie `name` in a `Cookie` header.
pub fn cookie_values<'h>(header: &'h [u8], name: &'h str) -> impl Iterator<Item = Vec<u8>> + 'h {
    header.split(|b| *b == b';').filter_map(move |pair| {
        let (k, v) = split_once(trim(pair), b'=');
        (trim(k) == name.as_bytes()).then(|| {
            let v = trim(v);
            let v = v
                .strip_prefix(b"\"")
                .and_then(|x| x.strip_suffix(b"\""))
                .unwrap_or(v);
            v.to_vec()
        })
    })
}

/// The `Cookie` header with every `name` cookie removed; `None` when
/// nothing is left.
pub fn remove_cookie(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = header
        .split(|b| *b == b';')
        .map(trim)
        .filter(|pair| !pair.is_empty() && trim(split_once(pair, b'=').0) != name.as_bytes())
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b"; "[..]))
}

fn split_once(s: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match s.iter().position(|b| *b == sep) {
        Some(i) => (
            s.get(..i).unwrap_or_default(),
            s.get(i.saturating_add(1)..).unwrap_or_default(),
        ),
        None => (s, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RecordedRequest;

    fn run(locations: &[TokenLocation], req: RecordedRequest) -> Extraction {
        extract(locations, &req.head())
    }

    fn found(token: &str, site: TokenSite) -> Extraction {
        Extraction::Found {
            token: token.into(),
            site,
        }
    }

    fn auth() -> TokenSite {
        TokenSite::Header("authorization".into())
    }

    #[test]
    fn bearer_header() {
        let b = [TokenLocation::bearer()];
        let req = |v: &[u8]| RecordedRequest::get("/").with_header("authorization", v);
        assert_eq!(
            run(&b, req(b"Bearer abc.def.ghi")),
            found("abc.def.ghi", auth())
        );
        assert_eq!(run(&b, req(b"bearer abc")), found("abc", auth()));
        assert_eq!(run(&b, req(b"BEARER    abc  ")), found("abc", auth()));
        assert_eq!(run(&b, req(b"Basic dXNlcjpwYXNz")), Extraction::Absent);
        assert_eq!(run(&b, req(b"Bearerabc")), Extraction::Absent);
        assert_eq!(
            run(&b, req(b"Bearer")),
            Extraction::Unreadable("empty token")
        );
        assert_eq!(
            run(&b, req(b"Bearer ")),
            Extraction::Unreadable("empty token")
        );
        assert_eq!(
            run(&b, req(b"Bearer a\xffb")),
            Extraction::Unreadable("token is not ASCII")
        );
        assert_eq!(run(&b, req(b"Bearer a,Bearer b")), Extraction::Multiple);
        assert_eq!(run(&b, RecordedRequest::get("/")), Extraction::Absent);
    }

    #[test]
    fn params_and_cookies() {
        let locs = [
            TokenLocation::bearer(),
            TokenLocation::Param("access_token".into()),
            TokenLocation::Cookie("session_token".into()),
        ];
        assert_eq!(
            run(&locs, RecordedRequest::get("/x?a=1&access_token=t%2Eu&b")),
            found("t.u", TokenSite::Param("access_token".into()))
        );
        assert_eq!(
            run(
                &locs,
                RecordedRequest::get("/x?access_token=a&access_token=b")
            ),
            Extraction::Multiple
        );
        assert_eq!(
            run(
                &locs,
                RecordedRequest::get("/").with_header("cookie", b"a=1; session_token=tok; b=2")
            ),
            found("tok", TokenSite::Cookie("session_token".into()))
        );
        assert_eq!(
            run(
                &locs,
                RecordedRequest::get("/").with_header("cookie", b"session_token=\"q\"")
            ),
            found("q", TokenSite::Cookie("session_token".into()))
        );
        assert_eq!(
            run(
                &locs,
                RecordedRequest::get("/").with_header("cookie", b"session_token=a;session_token=b")
            ),
            Extraction::Multiple
        );
        assert_eq!(
            run(
                &locs,
                RecordedRequest::get("/?access_token=a").with_header("authorization", b"Bearer b")
            ),
            Extraction::Multiple
        );
        assert_eq!(
            run(&locs, RecordedRequest::get("/?other=1")),
            Extraction::Absent
        );
    }

    #[test]
    fn every_value_of_a_location_counts() {
        let x_jwt = [TokenLocation::Header {
            name: "x-jwt".into(),
            prefix: None,
        }];
        let two_lines = RecordedRequest::get("/")
            .with_header("x-jwt", b"a")
            .with_header("x-jwt", b"b");
        assert_eq!(run(&x_jwt, two_lines), Extraction::Multiple);
        let twin = RecordedRequest::get("/")
            .with_header("x-jwt", b"a")
            .with_header("x_jwt", b"b");
        assert_eq!(run(&x_jwt, twin), Extraction::Multiple);
        let only_twin = RecordedRequest::get("/").with_header("X_JWT", b"a");
        assert_eq!(
            run(&x_jwt, only_twin),
            found("a", TokenSite::Header("x-jwt".into()))
        );
        let cookies = [TokenLocation::Cookie("session_token".into())];
        let two_cookie_lines = RecordedRequest::get("/")
            .with_header("cookie", b"a=1; session_token=t")
            .with_header("cookie", b"session_token=u");
        assert_eq!(run(&cookies, two_cookie_lines), Extraction::Multiple);
        let bearer = [TokenLocation::bearer()];
        let basic_and_bearer = RecordedRequest::get("/")
            .with_header("authorization", b"Basic dXNlcjpwYXNz")
            .with_header("authorization", b"Bearer t");
        assert_eq!(
            run(&bearer, basic_and_bearer),
            found("t", TokenSite::Header("authorization".into()))
        );
        let two_bearers = RecordedRequest::get("/").bearer("t").bearer("u");
        assert_eq!(run(&bearer, two_bearers), Extraction::Multiple);
        assert!(is_header_or_twin(b"x_client_id", "x-client-id"));
        assert!(is_header_or_twin(b"X-Client_Id", "x-client-id"));
        assert!(!is_header_or_twin(b"x-client-idx", "x-client-id"));
        assert!(!is_header_or_twin(b"x-client_ix", "x-client-id"));
    }

    #[test]
    fn header_without_prefix() {
        let locs = [TokenLocation::Header {
            name: "x-jwt".into(),
            prefix: None,
        }];
        assert_eq!(
            run(
                &locs,
                RecordedRequest::get("/").with_header("x-jwt", b" tok ")
            ),
            found("tok", TokenSite::Header("x-jwt".into()))
        );
    }

    #[test]
    fn removes_params_and_cookies() {
        assert_eq!(
            remove_query_param(b"/x?a=1&access_token=t&b=2", "access_token"),
            b"/x?a=1&b=2"
        );
        assert_eq!(
            remove_query_param(b"/x?access_token=t", "access_token"),
            b"/x"
        );
        assert_eq!(
            remove_query_param(b"/x?access_token=t#f", "access_token"),
            b"/x#f"
        );
        assert_eq!(remove_query_param(b"/x", "access_token"), b"/x");
        // A `?` inside the fragment starts no query.
        assert_eq!(
            remove_query_param(b"/x#f?access_token=t", "access_token"),
            b"/x#f?access_token=t"
        );
        assert_eq!(
            query_values(b"/x#f?access_token=t", "access_token").count(),
            0
        );
        assert_eq!(
            query_values(b"/x?access_token=t#f?access_token=u", "access_token").collect::<Vec<_>>(),
            [b"t".to_vec()]
        );
        assert_eq!(remove_cookie(b"a=1; s=t; b=2", "s").unwrap(), b"a=1; b=2");
        assert_eq!(remove_cookie(b"s=t", "s"), None);
    }
}
