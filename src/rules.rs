//! Rule matching: which rule decides a request.
//!
//! Paths are compared after the query and fragment are cut off and the path
//! is normalised the way RFC 3986 §6.2.2 describes (percent-encoded unreserved
//! characters decoded, `.` and `..` segments removed), with repeated slashes
//! merged. Envoy can do the same before filters run (`normalize_path`,
//! `merge_slashes`, both set in the shipped configurations); doing it here too
//! means `/healthz/../api/v1/order` can never slip past a rule because the
//! host was configured differently.

use std::borrow::Cow;

/// Request conditions of one rule; every condition present must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    pub path: Option<Vec<u8>>,
    pub prefix: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    /// Upper-case method names; `None` means any method.
    pub methods: Option<Vec<Vec<u8>>>,
}

/// What a matcher looks at.
pub struct RequestFacts<'r> {
    pub method: &'r [u8],
    /// Normalised path, see [`normalize_path`].
    pub path: &'r [u8],
    /// `None` when the host does not know a route name.
    pub route: Option<&'r [u8]>,
}

impl Matcher {
    pub fn matches(&self, req: &RequestFacts<'_>) -> bool {
        self.path.as_deref().is_none_or(|p| p == req.path)
            && self
                .prefix
                .as_deref()
                .is_none_or(|p| req.path.starts_with(p))
            && self.route.as_deref().is_none_or(|r| req.route == Some(r))
            && self
                .methods
                .as_ref()
                .is_none_or(|ms| ms.iter().any(|m| m.as_slice() == req.method))
    }

    pub fn uses_route(&self) -> bool {
        self.route.is_some()
    }

    pub fn uses_methods(&self) -> bool {
        self.methods.is_some()
    }

    /// Whether every request this matcher accepts is also accepted by
    /// `earlier` (so a rule with this matcher placed after `earlier` can
    /// never decide anything). Conservative: `false` when unsure.
    pub fn is_shadowed_by(&self, earlier: &Matcher) -> bool {
        let path_covered = match (&earlier.path, &earlier.prefix) {
            (None, None) => true,
            (Some(ep), None) => self.path.as_ref() == Some(ep),
            (None, Some(epre)) => match (&self.path, &self.prefix) {
                (Some(p), _) => p.starts_with(epre),
                (None, Some(pre)) => pre.starts_with(epre),
                (None, None) => false,
            },
            (Some(ep), Some(epre)) => self.path.as_ref() == Some(ep) && ep.starts_with(epre),
        };
        let route_covered = earlier.route.is_none() || earlier.route == self.route;
        let methods_covered = match (&earlier.methods, &self.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(em), Some(m)) => m.iter().all(|x| em.contains(x)),
        };
        path_covered && route_covered && methods_covered
    }
}

/// The path of a request target for matching: no query or fragment,
/// unreserved percent-escapes decoded, dot segments removed, slashes merged.
pub fn normalize_path(target: &[u8]) -> Cow<'_, [u8]> {
    let end = target
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(target.len());
    let path = target.get(..end).unwrap_or(target);
    let needs_work = path.contains(&b'%')
        || path.windows(2).any(|w| w == b"//" || w == b"/.")
        || path.first() != Some(&b'/');
    if !needs_work {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut out: Vec<u8> = Vec::with_capacity(decoded.len().saturating_add(1));
    for segment in decoded.split(|b| *b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                let cut = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            seg => {
                out.push(b'/');
                out.extend_from_slice(seg);
            }
        }
    }
    // Keep a trailing slash ("/a/" stays "/a/"), and the root is "/".
    let trailing = matches!(decoded.last(), Some(b'/'))
        || decoded.ends_with(b"/.")
        || decoded.ends_with(b"/..");
    if out.is_empty() || trailing {
        out.push(b'/');
    }
    Cow::Owned(out)
}

fn decode_unreserved(path: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0usize;
    while let Some(&b) = path.get(i) {
        if b == b'%' {
            let pair = (
                path.get(i.saturating_add(1)).copied().and_then(hex),
                path.get(i.saturating_add(2)).copied().and_then(hex),
            );
            if let (Some(hi), Some(lo)) = pair {
                let c = (hi << 4) | lo;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c);
                    i = i.saturating_add(3);
                    continue;
                }
            }
        }
        out.push(b);
        i = i.saturating_add(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        String::from_utf8(normalize_path(p.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn normalises_paths() {
        assert_eq!(n("/api/v1/order"), "/api/v1/order");
        assert_eq!(n("/api/v1/order?x=1#f"), "/api/v1/order");
        assert_eq!(n("/healthz/../api/v1/order"), "/api/v1/order");
        assert_eq!(n("/a/./b//c"), "/a/b/c");
        assert_eq!(n("/a/b/"), "/a/b/");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/../.."), "/");
        assert_eq!(n("/%2e%2e/api"), "/api");
        assert_eq!(n("/%61pi/%7Euser"), "/api/~user");
        assert_eq!(n("/a%2Fb"), "/a%2Fb", "encoded slash is not a separator");
        assert_eq!(n("/%zz"), "/%zz");
        assert_eq!(n("/%"), "/%");
        assert_eq!(n(""), "/");
        assert_eq!(n("?q"), "/");
        assert_eq!(n("api"), "/api");
        assert!(matches!(normalize_path(b"/plain/path?q"), Cow::Borrowed(_)));
    }

    fn m(
        path: Option<&str>,
        prefix: Option<&str>,
        route: Option<&str>,
        methods: Option<&[&str]>,
    ) -> Matcher {
        Matcher {
            path: path.map(|p| p.as_bytes().to_vec()),
            prefix: prefix.map(|p| p.as_bytes().to_vec()),
            route: route.map(|r| r.as_bytes().to_vec()),
            methods: methods.map(|ms| ms.iter().map(|m| m.as_bytes().to_vec()).collect()),
        }
    }

    fn facts<'a>(method: &'a str, path: &'a str, route: Option<&'a str>) -> RequestFacts<'a> {
        RequestFacts {
            method: method.as_bytes(),
            path: path.as_bytes(),
            route: route.map(str::as_bytes),
        }
    }

    #[test]
    fn matches_conditions() {
        let exact = m(Some("/healthz"), None, None, None);
        assert!(exact.matches(&facts("GET", "/healthz", None)));
        assert!(!exact.matches(&facts("GET", "/healthz/x", None)));
        let post = m(None, Some("/api/v1/order"), None, Some(&["POST"]));
        assert!(post.matches(&facts("POST", "/api/v1/order/1", None)));
        assert!(!post.matches(&facts("GET", "/api/v1/order", None)));
        assert!(!post.matches(&facts("post", "/api/v1/order", None)));
        let route = m(None, None, Some("admin_route"), None);
        assert!(route.matches(&facts("GET", "/x", Some("admin_route"))));
        assert!(!route.matches(&facts("GET", "/x", Some("other"))));
        assert!(!route.matches(&facts("GET", "/x", None)));
        assert!(Matcher::default().matches(&facts("PATCH", "/", None)));
    }

    #[test]
    fn finds_shadowed_rules() {
        let all = Matcher::default();
        let api = m(None, Some("/api"), None, None);
        let api_post = m(None, Some("/api/v1"), None, Some(&["POST"]));
        let api_get = m(None, Some("/api"), None, Some(&["GET"]));
        let exact = m(Some("/api/x"), None, None, None);
        assert!(api.is_shadowed_by(&all));
        assert!(api_post.is_shadowed_by(&api));
        assert!(!api.is_shadowed_by(&api_post));
        assert!(!api_post.is_shadowed_by(&api_get));
        assert!(exact.is_shadowed_by(&api));
        assert!(!api.is_shadowed_by(&exact));
        assert!(exact.is_shadowed_by(&exact.clone()));
        let routed = m(None, None, Some("r"), None);
        assert!(!all.is_shadowed_by(&routed));
        assert!(routed.is_shadowed_by(&all));
    }
}
