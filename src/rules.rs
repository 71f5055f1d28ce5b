//! Rule matching: which rule decides a request. Paths are compared in the
//! normal form of [`crate::path`], on both sides: the request path is
//! normalised per request, rule paths once at load.

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
    /// The path in normal form ([`crate::path`]).
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

#[cfg(test)]
mod tests {
    use super::*;

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
