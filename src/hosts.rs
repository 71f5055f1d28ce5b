//! Host patterns of `match.hosts`: the request's authority, exact
//! (`api.example.com`) or a wildcard suffix (`*.example.com`: any name
//! under it, like Envoy's virtual host domains), compared without case and
//! without a trailing dot; the port counts only when the pattern names one.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower-case name, or the suffix after `*` (`.example.com`).
    name: String,
    wildcard: bool,
    port: Option<String>,
}

/// `(host, port)` of an authority: `[::1]:8080`, `api.example.com:443`.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end.saturating_add(1));
                (host, rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, &'static str> {
        let lower = text.to_ascii_lowercase();
        let (host, port) = split_authority(&lower);
        if let Some(p) = port
            && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("the port must be digits");
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        let (name, wildcard) = match host.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') && suffix.len() > 1 => (suffix, true),
            Some(_) => return Err("a wildcard is a leading '*.' (as in *.example.com)"),
            None => (host, false),
        };
        let valid = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
            });
        if !valid {
            return Err("is not a host name");
        }
        Ok(HostPattern {
            name: name.to_owned(),
            wildcard,
            port: port.map(str::to_owned),
        })
    }

    /// The pattern in its checked form (`*.example.com:8443`).
    pub fn text(&self) -> String {
        let star = if self.wildcard { "*" } else { "" };
        match &self.port {
            Some(port) => format!("{star}{}:{port}", self.name),
            None => format!("{star}{}", self.name),
        }
    }

    /// Whether `authority` (`:authority`, as the client sent it) matches.
    pub fn matches(&self, authority: &[u8]) -> bool {
        let Ok(authority) = std::str::from_utf8(authority) else {
            return false;
        };
        let (host, port) = split_authority(authority);
        let host = host.strip_suffix('.').unwrap_or(host);
        if let Some(want) = &self.port
            && port != Some(want.as_str())
        {
            return false;
        }
        if self.wildcard {
            host.len() > self.name.len()
                && host
                    .get(host.len().saturating_sub(self.name.len())..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(&self.name))
        } else {
            host.eq_ignore_ascii_case(&self.name)
        }
    }

    /// Whether every authority this pattern matches, `other` matches too.
    pub fn is_covered_by(&self, other: &HostPattern) -> bool {
        if other.port.is_some() && other.port != self.port {
            return false;
        }
        match (self.wildcard, other.wildcard) {
            (_, false) => !self.wildcard && self.name == other.name,
            (false, true) => self.name.ends_with(&other.name) && self.name.len() > other.name.len(),
            (true, true) => self.name.ends_with(&other.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_and_wildcard_hosts() {
        let api = h("API.example.com");
        assert!(api.matches(b"api.example.com"));
        assert!(api.matches(b"Api.Example.Com:8443"), "port ignored");
        assert!(api.matches(b"api.example.com."), "trailing dot");
        assert!(!api.matches(b"www.api.example.com"));
        let any = h("*.example.com");
        assert!(any.matches(b"a.example.com"));
        assert!(any.matches(b"a.b.example.com:80"));
        assert!(!any.matches(b"example.com"));
        assert!(!any.matches(b"badexample.com"));
        let port = h("api.example.com:8443");
        assert!(port.matches(b"api.example.com:8443"));
        assert!(!port.matches(b"api.example.com"));
        assert!(!port.matches(b"api.example.com:443"));
        let v6 = h("[::1]:8080");
        assert!(v6.matches(b"[::1]:8080"));
        assert!(!v6.matches(b"[::1]"));
        assert!(!api.matches(b"\xff"));
        for bad in [
            "",
            "*example.com",
            "a*.b",
            "api.example.com:",
            "api example",
            "*.",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coverage_for_shadowing() {
        assert!(h("a.example.com").is_covered_by(&h("*.example.com")));
        assert!(h("*.a.example.com").is_covered_by(&h("*.example.com")));
        assert!(!h("*.example.com").is_covered_by(&h("a.example.com")));
        assert!(!h("example.com").is_covered_by(&h("*.example.com")));
        assert!(h("a.example.com:1").is_covered_by(&h("a.example.com")));
        assert!(!h("a.example.com").is_covered_by(&h("a.example.com:1")));
    }
}
