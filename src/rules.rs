//! Rule matching: which rule decides a request. Paths are compared in the
//! normal form of [`crate::path`], on both sides: the request path is
//! normalised per request, rule paths (and the literal parts of path
//! templates) once at load. The first rule that matches decides.

use crate::hosts::HostPattern;
use crate::path_template::PathTemplate;

/// Request conditions of one rule; every condition present must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    pub path: Option<Vec<u8>>,
    pub prefix: Option<Vec<u8>>,
    /// API Gateway route-key path.
    pub template: Option<PathTemplate>,
    /// The request's authority must match one.
    pub hosts: Option<Vec<HostPattern>>,
    pub route: Option<Vec<u8>>,
    /// Upper-case method names; `None` means any method.
    pub methods: Option<Vec<Vec<u8>>>,
}

/// What a matcher looks at.
pub struct RequestFacts<'r> {
    pub method: &'r [u8],
    /// The path in normal form ([`crate::path`]).
    pub path: &'r [u8],
    /// `:authority` as the client sent it.
    pub authority: &'r [u8],
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
            && self.template.as_ref().is_none_or(|t| t.matches(req.path))
            && self
                .hosts
                .as_ref()
                .is_none_or(|hs| hs.iter().any(|h| h.matches(req.authority)))
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
        // What this matcher's paths all start with, for prefix coverage.
        let own_prefix = self
            .path
            .clone()
            .or_else(|| self.prefix.clone())
            .or_else(|| self.template.as_ref().map(PathTemplate::literal_prefix));
        let path_covered = match (&earlier.path, &earlier.prefix, &earlier.template) {
            (None, None, None) => true,
            (Some(ep), None, None) => self.path.as_ref() == Some(ep),
            (None, Some(epre), None) => own_prefix.is_some_and(|p| p.starts_with(epre)),
            (Some(ep), Some(epre), None) => self.path.as_ref() == Some(ep) && ep.starts_with(epre),
            // A template covers another only when they are the same.
            (None, None, Some(t)) => {
                self.template.as_ref() == Some(t)
                    || self.path.as_ref().is_some_and(|p| t.matches(p))
            }
            _ => false,
        };
        let hosts_covered = match (&earlier.hosts, &self.hosts) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(eh), Some(h)) => h.iter().all(|x| eh.iter().any(|e| x.is_covered_by(e))),
        };
        let route_covered = earlier.route.is_none() || earlier.route == self.route;
        let methods_covered = match (&earlier.methods, &self.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(em), Some(m)) => m.iter().all(|x| em.contains(x)),
        };
        path_covered && hosts_covered && route_covered && methods_covered
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
            ..Matcher::default()
        }
    }

    fn facts<'a>(method: &'a str, path: &'a str, route: Option<&'a str>) -> RequestFacts<'a> {
        RequestFacts {
            method: method.as_bytes(),
            path: path.as_bytes(),
            authority: b"api.example.com",
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

        let template = |t: &str| Matcher {
            template: Some(PathTemplate::parse(t).unwrap()),
            ..Matcher::default()
        };
        let hosts = |hs: &[&str]| Matcher {
            hosts: Some(hs.iter().map(|h| HostPattern::parse(h).unwrap()).collect()),
            ..Matcher::default()
        };
        assert!(template("/orders/{id}").is_shadowed_by(&m(None, Some("/orders/"), None, None)));
        assert!(!template("/orders/{id}").is_shadowed_by(&m(None, Some("/orders/1"), None, None)));
        assert!(exact.is_shadowed_by(&template("/api/{x}")));
        assert!(!api.is_shadowed_by(&template("/api/{x}")));
        assert!(hosts(&["a.example.com"]).is_shadowed_by(&hosts(&["*.example.com"])));
        assert!(!hosts(&["*.example.com"]).is_shadowed_by(&hosts(&["a.example.com"])));
        assert!(!all.is_shadowed_by(&hosts(&["a.example.com"])));
    }

    #[test]
    fn matches_templates_and_hosts() {
        let orders = Matcher {
            template: Some(PathTemplate::parse("/orders/{id}").unwrap()),
            hosts: Some(vec![HostPattern::parse("*.example.com").unwrap()]),
            ..Matcher::default()
        };
        assert!(orders.matches(&facts("GET", "/orders/7", None)));
        assert!(!orders.matches(&facts("GET", "/orders/7/x", None)));
        let other_host = RequestFacts {
            authority: b"evil.test",
            ..facts("GET", "/orders/7", None)
        };
        assert!(!orders.matches(&other_host));
    }
}
