//! API Gateway route-key paths (`/orders/{id}`, `/files/{proxy+}`), so
//! route tables copied from an HTTP API match unchanged: `{name}` is one
//! non-empty path segment, a final `{name+}` one or more segments (the
//! rest of the path). Literal segments compare exactly, on the path in
//! normal form.

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    /// `{name}`.
    One,
    /// `{name+}`, last only.
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    /// The template as written (for messages).
    pub text: String,
}

fn is_variable_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl PathTemplate {
    /// Parses a template; the error says what is wrong. Literal segments
    /// are taken as given: the caller puts the template in normal form
    /// first.
    pub fn parse(text: &str) -> Result<PathTemplate, &'static str> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("must start with '/'");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let last = i.checked_add(1) == Some(parts.len());
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(var) => match var.strip_suffix('+') {
                    Some(name) if is_variable_name(name) => {
                        if !last {
                            return Err("a greedy {name+} must be the last segment");
                        }
                        Segment::Rest
                    }
                    None if is_variable_name(var) => Segment::One,
                    _ => return Err("a variable is {name} or {name+} (letters, digits, '_', '-')"),
                },
                None if part.contains(['{', '}']) => {
                    return Err("a variable must be a whole segment ({name})");
                }
                None => Segment::Literal(part.as_bytes().to_vec()),
            };
            segments.push(segment);
        }
        Ok(PathTemplate {
            segments,
            text: text.to_owned(),
        })
    }

    /// Whether `path` (normal form, no query) matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        let Some(rest) = path.strip_prefix(b"/") else {
            return false;
        };
        let mut parts = rest.split(|b| *b == b'/');
        for segment in &self.segments {
            match segment {
                Segment::Rest => {
                    // One or more segments: something non-empty must follow.
                    return parts.next().is_some_and(|first| !first.is_empty());
                }
                Segment::One => {
                    if parts.next().is_none_or(<[u8]>::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if parts.next() != Some(lit.as_slice()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// Whether every path this template matches starts with `prefix` (for
    /// shadowing checks; conservative).
    pub fn literal_prefix(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(lit) => {
                    out.push(b'/');
                    out.extend_from_slice(lit);
                }
                Segment::One | Segment::Rest => {
                    out.push(b'/');
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> PathTemplate {
        PathTemplate::parse(s).unwrap()
    }

    #[test]
    fn api_gateway_route_keys() {
        let order = t("/orders/{id}");
        assert!(order.matches(b"/orders/42"));
        assert!(!order.matches(b"/orders/"));
        assert!(!order.matches(b"/orders"));
        assert!(!order.matches(b"/orders/42/items"));
        assert!(!order.matches(b"/orders/42/"));
        assert!(!order.matches(b"/Orders/42"), "literals are case-sensitive");
        let files = t("/files/{proxy+}");
        assert!(files.matches(b"/files/a"));
        assert!(files.matches(b"/files/a/b/c"));
        assert!(files.matches(b"/files/a/b/"));
        assert!(!files.matches(b"/files/"));
        assert!(!files.matches(b"/files"));
        let all = t("/{proxy+}");
        assert!(all.matches(b"/x") && !all.matches(b"/"));
        let two = t("/pets/{petId}/toys/{toyId}");
        assert!(two.matches(b"/pets/1/toys/2"));
        assert!(!two.matches(b"/pets/1/toys"));
        assert!(t("/").matches(b"/") && !t("/").matches(b"/a"));
        assert_eq!(two.literal_prefix(), b"/pets/");
        assert_eq!(t("/a/b").literal_prefix(), b"/a/b");
    }

    #[test]
    fn refuses_what_api_gateway_refuses() {
        for bad in [
            "orders/{id}",
            "/files/{proxy+}/x",
            "/a{b}",
            "/{}",
            "/{a b}",
            "/{+}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
