//! The request path a decision is made on, and the path the upstream gets.
//!
//! A rule is matched against the path in normal form (RFC 3986 §6.2.2):
//! percent-escapes of unreserved characters decoded and the others in upper
//! case, dot segments removed exactly as §5.2.4 describes (empty segments
//! are segments: `/a//../b` is `/a/b`), then, by default, runs of `/`
//! merged. The upstream must receive that same path, so a request whose
//! `:path` is not already normal is either forwarded with `:path` rewritten
//! to the normal form (`rewrite`, the default) or refused with 400
//! (`reject`).
//!
//! Some paths are read differently by common upstreams whatever RFC 3986
//! says, so no single normal form can stand for all of them: encoded
//! separators (`%2F`, `%5C`: WSGI, Tomcat with encoded slashes allowed and
//! many routers decode them), a literal `\` (the WHATWG URL parser reads it
//! as `/`), `;` path parameters (Tomcat, Jetty and Spring cut `..;/` down to
//! `../`), an encoded `;`, encoded control characters and broken escapes.
//! They are refused by default, like Envoy's `path_with_escaped_slashes_action:
//! REJECT_REQUEST` and Spring Security's strict firewall; with
//! `ambiguous: allow` they are kept as opaque bytes (`%2F` is no separator,
//! `..;` no dot segment) for operators who know their upstream.

use std::borrow::Cow;

use crate::percent::escape_at;

/// How paths are normalised; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    /// Rewrite a path that is not normal (true) or refuse it (false).
    pub rewrite: bool,
    pub merge_slashes: bool,
    /// Keep ambiguous bytes (true) or refuse paths holding them (false).
    pub allow_ambiguous: bool,
}

impl PathRules {
    /// The defaults: rewrite, merge slashes, refuse ambiguous paths.
    pub const DEFAULT: PathRules = PathRules {
        rewrite: true,
        merge_slashes: true,
        allow_ambiguous: false,
    };
}

impl Default for PathRules {
    fn default() -> Self {
        PathRules::DEFAULT
    }
}

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// Not normal, and the policy refuses rather than rewrites.
    NotNormal,
    /// Read differently by common upstreams (the text says how).
    Ambiguous(&'static str),
    /// Not an absolute path (`*` aside).
    NotAbsolute,
}

impl PathProblem {
    pub fn description(self) -> &'static str {
        match self {
            PathProblem::NotNormal => "path is not in normal form",
            PathProblem::Ambiguous(why) => why,
            PathProblem::NotAbsolute => "path is not absolute",
        }
    }
}

/// A request target (`:path`) checked against the path rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPath<'t> {
    /// The path is normal: decide on it and forward the target unchanged.
    Normal(&'t [u8]),
    /// Decide on `path`; the upstream must get `target` (the normal path
    /// followed by the original query).
    Rewrite {
        path: Vec<u8>,
        target: Vec<u8>,
    },
    Refused(PathProblem),
}

impl TargetPath<'_> {
    /// The path to decide on (`None` when refused).
    pub fn decision_path(&self) -> Option<&[u8]> {
        match self {
            TargetPath::Normal(p) => Some(p),
            TargetPath::Rewrite { path, .. } => Some(path),
            TargetPath::Refused(_) => None,
        }
    }
}

/// Splits a request target into path, query (with its `?`) and whether a
/// fragment followed. A `?` after `#` belongs to the fragment.
fn split_target(target: &[u8]) -> (&[u8], &[u8], bool) {
    let hash = target.iter().position(|b| *b == b'#');
    let before = hash.map_or(target, |h| target.get(..h).unwrap_or_default());
    match before.iter().position(|b| *b == b'?') {
        Some(q) => {
            let (path, query) = before.split_at(q);
            (path, query, hash.is_some())
        }
        None => (before, &[], hash.is_some()),
    }
}

/// Checks a request target (`:path` with its query).
pub fn check_target<'t>(target: &'t [u8], rules: &PathRules) -> TargetPath<'t> {
    let (path, query, fragment) = split_target(target);
    if path == b"*" && !fragment {
        // `OPTIONS *`: no path to normalise; only match-all rules fit.
        return TargetPath::Normal(path);
    }
    let normal = match normalize(path, rules) {
        Ok(n) => n,
        Err(problem) => return TargetPath::Refused(problem),
    };
    match normal {
        Cow::Borrowed(p) if !fragment => TargetPath::Normal(p),
        normal => {
            if !rules.rewrite {
                return TargetPath::Refused(PathProblem::NotNormal);
            }
            let path = normal.into_owned();
            let mut rewritten = Vec::with_capacity(path.len().saturating_add(query.len()));
            rewritten.extend_from_slice(&path);
            rewritten.extend_from_slice(query);
            TargetPath::Rewrite {
                path,
                target: rewritten,
            }
        }
    }
}

/// The normal form of a path (no query, no fragment). Borrowed when the
/// path is already normal.
pub fn normalize<'p>(path: &'p [u8], rules: &PathRules) -> Result<Cow<'p, [u8]>, PathProblem> {
    if path.first() != Some(&b'/') {
        return Err(PathProblem::NotAbsolute);
    }
    let quick = !path
        .iter()
        .any(|b| matches!(b, b'%' | b'\\' | b';' | b'#' | b'?'))
        && !path.windows(2).any(|w| w == b"/." || w == b"//");
    if quick {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path, rules.allow_ambiguous)?;
    let mut out = remove_dot_segments(&decoded);
    if rules.merge_slashes {
        out.dedup_by(|a, b| *a == b'/' && *b == b'/');
    }
    if out.is_empty() {
        out.push(b'/');
    }
    if out == path {
        Ok(Cow::Borrowed(path))
    } else {
        Ok(Cow::Owned(out))
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes escapes of unreserved characters, upper-cases the others, and
/// finds the ambiguous bytes (see the module documentation).
fn decode(path: &[u8], allow_ambiguous: bool) -> Result<Vec<u8>, PathProblem> {
    let refuse = |why| {
        if allow_ambiguous {
            Ok(())
        } else {
            Err(PathProblem::Ambiguous(why))
        }
    };
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0usize;
    while let Some(&b) = path.get(i) {
        match b {
            b'%' => {
                let Some(c) = escape_at(path, i) else {
                    refuse("path has a malformed percent-escape")?;
                    out.push(b);
                    i = i.saturating_add(1);
                    continue;
                };
                if is_unreserved(c) {
                    out.push(c);
                } else {
                    match c {
                        b'/' | b'\\' => refuse("path has an encoded slash or backslash")?,
                        b';' => refuse("path has an encoded semicolon")?,
                        0..=0x1f | 0x7f => refuse("path has an encoded control character")?,
                        _ => {}
                    }
                    out.push(b'%');
                    for nibble in [c >> 4, c & 0x0f] {
                        out.push(HEX_UPPER.get(usize::from(nibble)).copied().unwrap_or(b'0'));
                    }
                }
                i = i.saturating_add(3);
            }
            b'\\' => {
                refuse("path has a backslash")?;
                out.push(b);
                i = i.saturating_add(1);
            }
            b';' => {
                refuse("path has a ';' parameter")?;
                out.push(b);
                i = i.saturating_add(1);
            }
            _ => {
                out.push(b);
                i = i.saturating_add(1);
            }
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4 "Remove Dot Segments", on an absolute path.
pub fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut input: &[u8] = path;
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    // Removes the last segment and its preceding '/' from the output.
    fn pop(out: &mut Vec<u8>) {
        let cut = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
        out.truncate(cut);
    }
    while !input.is_empty() {
        if let Some(rest) = input
            .strip_prefix(b"../".as_slice())
            .or_else(|| input.strip_prefix(b"./".as_slice()))
        {
            // A.
            input = rest;
        } else if input.starts_with(b"/./") {
            // B.
            input = input.get(2..).unwrap_or_default();
        } else if input == b"/." {
            out.push(b'/');
            input = &[];
        } else if input.starts_with(b"/../") {
            // C.
            input = input.get(3..).unwrap_or_default();
            pop(&mut out);
        } else if input == b"/.." {
            pop(&mut out);
            out.push(b'/');
            input = &[];
        } else if input == b"." || input == b".." {
            // D.
            input = &[];
        } else {
            // E: the first segment, with its leading '/'.
            let start = usize::from(input.first() == Some(&b'/'));
            let end = input
                .iter()
                .skip(start)
                .position(|b| *b == b'/')
                .map_or(input.len(), |p| p.saturating_add(start));
            let (segment, rest) = input.split_at(end);
            out.extend_from_slice(segment);
            input = rest;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: PathRules = PathRules {
        rewrite: true,
        merge_slashes: true,
        allow_ambiguous: true,
    };
    const KEEP_SLASHES: PathRules = PathRules {
        rewrite: true,
        merge_slashes: false,
        allow_ambiguous: false,
    };

    fn n(p: &str) -> String {
        n_with(p, &PathRules::DEFAULT)
    }

    fn n_with(p: &str, rules: &PathRules) -> String {
        match normalize(p.as_bytes(), rules) {
            Ok(out) => String::from_utf8(out.into_owned()).unwrap(),
            Err(e) => format!("ERR {}", e.description()),
        }
    }

    #[test]
    fn rfc_3986_dot_segments() {
        // RFC 3986 §5.2.4's own examples (as absolute paths).
        assert_eq!(remove_dot_segments(b"/a/b/c/./../../g"), b"/a/g");
        assert_eq!(remove_dot_segments(b"mid/content=5/../6"), b"mid/6");
        // Empty segments are segments: `..` removes them one at a time.
        assert_eq!(remove_dot_segments(b"/a//../b"), b"/a/b");
        assert_eq!(
            remove_dot_segments(b"/api/v1/order/42/////../../../../healthz"),
            b"/api/v1/order/42/healthz"
        );
        assert_eq!(remove_dot_segments(b"/../.."), b"/");
        assert_eq!(remove_dot_segments(b"/a/b/.."), b"/a/");
        assert_eq!(remove_dot_segments(b"/a/."), b"/a/");
        assert_eq!(remove_dot_segments(b"/.well-known/x"), b"/.well-known/x");
        assert_eq!(remove_dot_segments(b"/a/..b/c"), b"/a/..b/c");
    }

    #[test]
    fn normal_forms() {
        assert_eq!(n("/api/v1/order"), "/api/v1/order");
        assert_eq!(n("/healthz/../api/v1/order"), "/api/v1/order");
        assert_eq!(n("/a/./b//c"), "/a/b/c");
        assert_eq!(n("/a/b/"), "/a/b/");
        assert_eq!(n("//public/api/v1/order/42"), "/public/api/v1/order/42");
        assert_eq!(
            n("/api/v1/order/42/////../../../../healthz"),
            "/api/v1/order/42/healthz"
        );
        assert_eq!(n("/%2e%2e/api"), "/api");
        assert_eq!(n("/%61pi/%7Euser"), "/api/~user");
        assert_eq!(n("/a%3a"), "/a%3A", "escapes in upper case");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/.."), "/");
        // Without merging, empty segments stay.
        assert_eq!(n_with("//a//b", &KEEP_SLASHES), "//a//b");
        assert_eq!(n_with("/a//../b", &KEEP_SLASHES), "/a/b");
        assert!(matches!(
            normalize(b"/plain/path", &PathRules::DEFAULT),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            normalize(b"/a/%7E", &PathRules::DEFAULT),
            Ok(Cow::Owned(_))
        ));
    }

    #[test]
    fn ambiguous_paths_are_refused_or_kept_opaque() {
        for p in [
            "/a%2Fb",
            "/a%2fb",
            "/a%5Cb",
            "/public/..%2F..%2Fadmin",
            "/a\\b",
            "/public/..;/admin",
            "/healthz;/../admin",
            "/a%3Bb",
            "/a%00",
            "/a%zz",
            "/a%",
        ] {
            assert!(n(p).starts_with("ERR "), "{p}: {}", n(p));
        }
        // Kept as opaque bytes when allowed: `%2F` is no separator and
        // `..;` no dot segment.
        assert_eq!(n_with("/a%2fb/../c", &ALLOW), "/c");
        assert_eq!(n_with("/a%2fb", &ALLOW), "/a%2Fb");
        assert_eq!(n_with("/public/..;/admin", &ALLOW), "/public/..;/admin");
        assert_eq!(n_with("/a\\..\\b", &ALLOW), "/a\\..\\b");
        assert_eq!(n("relative"), "ERR path is not absolute");
    }

    #[test]
    fn targets() {
        let d = PathRules::DEFAULT;
        assert_eq!(
            check_target(b"/api?x=1", &d),
            TargetPath::Normal(b"/api".as_slice())
        );
        assert_eq!(
            check_target(b"/a/../api?x=/../1", &d),
            TargetPath::Rewrite {
                path: b"/api".to_vec(),
                target: b"/api?x=/../1".to_vec()
            }
        );
        assert_eq!(
            check_target(b"/api#frag?x", &d),
            TargetPath::Rewrite {
                path: b"/api".to_vec(),
                target: b"/api".to_vec()
            }
        );
        let reject = PathRules {
            rewrite: false,
            ..d
        };
        assert_eq!(
            check_target(b"/a/../api", &reject),
            TargetPath::Refused(PathProblem::NotNormal)
        );
        assert_eq!(
            check_target(b"/api", &reject),
            TargetPath::Normal(b"/api".as_slice())
        );
        assert_eq!(check_target(b"*", &d), TargetPath::Normal(b"*".as_slice()));
        assert_eq!(
            check_target(b"/a%2Fb", &d),
            TargetPath::Refused(PathProblem::Ambiguous(
                "path has an encoded slash or backslash"
            ))
        );
    }

    #[test]
    fn normal_form_is_stable() {
        for p in [
            "/a/./b/../../c//d/%7e/%2e%2E/x",
            "//x/../../y/.",
            "/a%3a%3A/..",
            "/%41%42/./",
        ] {
            let once = n(p);
            assert_eq!(n(&once), once, "{p}");
        }
    }
}
