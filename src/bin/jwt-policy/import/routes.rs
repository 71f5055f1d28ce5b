//! API Gateway HTTP API route keys (`POST /api/v1/order`, `ANY
//! /files/{proxy+}`, `$default`) and the order that makes the filter's
//! "first matching rule wins" pick the route API Gateway picks.
//!
//! API Gateway selects the most specific route: a full match of path and
//! method, then a route with a greedy path variable, then `$default`; `ANY`
//! only catches methods that no route of the same path names. The rules are
//! therefore ordered:
//!
//! 1. routes without a greedy variable (literal paths and `{name}`
//!    segments), then routes ending in `{name+}`, then `$default`;
//! 2. among greedy routes, the longer fixed part first (`/pets/{proxy+}`
//!    before `/{proxy+}`);
//! 3. segment by segment from the left, a literal segment before a variable
//!    (`/pets/dog/1` before `/pets/dog/{id}`);
//! 4. longer paths before shorter ones;
//! 5. a route naming a method before `ANY` on the same path;
//! 6. then by path and method, so the output is stable.
//!
//! Routes without a greedy variable only match paths of their own length,
//! so steps 3-4 decide between routes that can both match a request. API
//! Gateway does not document a tie-break for variables at different
//! positions (`/a/{x}/c` against `/a/b/{y}`); the leftmost literal wins here.

use std::cmp::Ordering;

use super::model::{Match, name_from};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Var(String),
    /// `{name+}`: one or more segments; only last.
    Greedy(String),
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Var(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    /// `$default`: requests no other route matches.
    Default,
    Route {
        /// Upper case; `None` for `ANY`.
        method: Option<String>,
        /// As written (`/api/v1/order/{id}`).
        path: String,
        segments: Vec<Segment>,
    },
}

impl RouteKey {
    /// A route key as CloudFormation writes it: `METHOD /path`,
    /// `ANY /path` or `$default`.
    pub fn parse(key: &str) -> Result<RouteKey, String> {
        let key = key.trim();
        if key == "$default" {
            return Ok(RouteKey::Default);
        }
        let Some((method, path)) = key.split_once(char::is_whitespace) else {
            return Err(format!(
                "route key \"{key}\" is not \"METHOD /path\", \"ANY /path\" or \"$default\""
            ));
        };
        RouteKey::from_parts(method, path.trim())
    }

    /// A method (`get`, `ANY`, OpenAPI's `x-amazon-apigateway-any-method`)
    /// and a path.
    pub fn from_parts(method: &str, path: &str) -> Result<RouteKey, String> {
        let method = if method.eq_ignore_ascii_case("any")
            || method.eq_ignore_ascii_case("x-amazon-apigateway-any-method")
        {
            None
        } else if !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic()) {
            Some(method.to_ascii_uppercase())
        } else {
            return Err(format!("\"{method}\" is not an HTTP method"));
        };
        let segments = parse_path(path)?;
        Ok(RouteKey::Route {
            method,
            path: path.to_owned(),
            segments,
        })
    }

    pub fn is_default(&self) -> bool {
        matches!(self, RouteKey::Default)
    }

    /// Whether an `OPTIONS` request can select this route: `$default`,
    /// `ANY` or `OPTIONS`.
    pub fn takes_options(&self) -> bool {
        match self {
            RouteKey::Default => true,
            RouteKey::Route { method, .. } => method.as_deref().is_none_or(|m| m == "OPTIONS"),
        }
    }

    /// `POST /api/v1/order`, `ANY /files/{proxy+}`, `$default`.
    pub fn text(&self) -> String {
        match self {
            RouteKey::Default => "$default".to_owned(),
            RouteKey::Route { method, path, .. } => {
                format!("{} {path}", method.as_deref().unwrap_or("ANY"))
            }
        }
    }

    /// The rule's `match`: `path` for a literal path (route paths are
    /// exact), `path_template` when the path has variables, nothing for
    /// `$default`; `methods` unless `ANY`.
    pub fn to_match(&self) -> Match {
        match self {
            RouteKey::Default => Match::default(),
            RouteKey::Route {
                method,
                path,
                segments,
            } => {
                let literal = segments.iter().all(|s| matches!(s, Segment::Literal(_)));
                Match {
                    path: literal.then(|| path.clone()),
                    path_template: (!literal).then(|| path.clone()),
                    methods: method.as_ref().map(|m| vec![m.clone()]),
                    ..Match::default()
                }
            }
        }
    }

    /// A rule name: `post_api_v1_order`, `any_files_proxy`, `get_root`,
    /// `default`.
    pub fn rule_name(&self) -> String {
        match self {
            RouteKey::Default => "default".to_owned(),
            RouteKey::Route { method, path, .. } => {
                let method = method.as_deref().unwrap_or("any").to_ascii_lowercase();
                if path.trim_matches('/').is_empty() {
                    format!("{method}_root")
                } else {
                    name_from(&format!("{method} {path}"))
                }
            }
        }
    }

    fn class(&self) -> u8 {
        match self {
            RouteKey::Default => 2,
            RouteKey::Route { segments, .. } => {
                u8::from(matches!(segments.last(), Some(Segment::Greedy(_))))
            }
        }
    }

    /// The order of the module documentation: `Less` means `self` is more
    /// specific and comes first.
    pub fn specificity(&self, other: &RouteKey) -> Ordering {
        let by_class = self.class().cmp(&other.class());
        let (
            RouteKey::Route {
                method: m1,
                path: p1,
                segments: s1,
            },
            RouteKey::Route {
                method: m2,
                path: p2,
                segments: s2,
            },
        ) = (self, other)
        else {
            return by_class;
        };
        let by_segments = s1
            .iter()
            .zip(s2.iter())
            .map(|(a, b)| a.rank().cmp(&b.rank()))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        let greedy_fixed = if self.class() == 1 && other.class() == 1 {
            s2.len().cmp(&s1.len())
        } else {
            Ordering::Equal
        };
        by_class
            .then(greedy_fixed)
            .then(by_segments)
            .then(s2.len().cmp(&s1.len()))
            .then(m1.is_none().cmp(&m2.is_none()))
            .then_with(|| p1.cmp(p2))
            .then_with(|| m1.cmp(m2))
    }

    /// Whether two keys are the same route (same method and path shape).
    pub fn same_route(&self, other: &RouteKey) -> bool {
        match (self, other) {
            (RouteKey::Default, RouteKey::Default) => true,
            (
                RouteKey::Route {
                    method: m1,
                    segments: s1,
                    ..
                },
                RouteKey::Route {
                    method: m2,
                    segments: s2,
                    ..
                },
            ) => {
                m1 == m2
                    && s1.len() == s2.len()
                    && s1.iter().zip(s2).all(|(a, b)| match (a, b) {
                        (Segment::Literal(x), Segment::Literal(y)) => x == y,
                        _ => a.rank() == b.rank(),
                    })
            }
            _ => false,
        }
    }
}

fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("route path \"{path}\" does not start with /"));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.strip_suffix('/').unwrap_or(rest).split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let last = i.saturating_add(1) == parts.len();
        if part.is_empty() {
            return Err(format!("route path \"{path}\" has an empty segment"));
        }
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                let (name, greedy) = match name.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (name, false),
                };
                if name.is_empty() || name.contains(['{', '}', '+']) {
                    return Err(format!(
                        "route path \"{path}\": bad path variable \"{part}\""
                    ));
                }
                if greedy && !last {
                    return Err(format!(
                        "route path \"{path}\": the greedy variable {{{name}+}} must be the last segment"
                    ));
                }
                if greedy {
                    Segment::Greedy(name.to_owned())
                } else {
                    Segment::Var(name.to_owned())
                }
            }
            None if part.contains(['{', '}']) => {
                return Err(format!(
                    "route path \"{path}\": a path variable must be a whole segment (\"{part}\")"
                ));
            }
            None => Segment::Literal((*part).to_owned()),
        };
        segments.push(segment);
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> RouteKey {
        RouteKey::parse(s).unwrap()
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut ks: Vec<RouteKey> = keys.iter().map(|k| key(k)).collect();
        ks.sort_by(RouteKey::specificity);
        ks.iter().map(RouteKey::text).collect()
    }

    #[test]
    fn parses_route_keys() {
        assert_eq!(key("$default"), RouteKey::Default);
        assert_eq!(
            key("POST /api/v1/order"),
            RouteKey::Route {
                method: Some("POST".into()),
                path: "/api/v1/order".into(),
                segments: vec![
                    Segment::Literal("api".into()),
                    Segment::Literal("v1".into()),
                    Segment::Literal("order".into())
                ]
            }
        );
        let k = key("ANY /files/{proxy+}");
        assert_eq!(k.text(), "ANY /files/{proxy+}");
        assert_eq!(
            k.to_match(),
            Match {
                path_template: Some("/files/{proxy+}".into()),
                ..Match::default()
            }
        );
        assert_eq!(
            key("get /api/v1/order/{id}").to_match(),
            Match {
                path_template: Some("/api/v1/order/{id}".into()),
                methods: Some(vec!["GET".into()]),
                ..Match::default()
            }
        );
        assert_eq!(key("GET /").to_match().path.as_deref(), Some("/"));
        assert_eq!(key("GET /").rule_name(), "get_root");
        assert_eq!(key("ANY /files/{proxy+}").rule_name(), "any_files_proxy");
        assert_eq!(key("$default").to_match(), Match::default());
        for bad in [
            "GET",
            "GET api",
            "GET /a//b",
            "GET /{proxy+}/x",
            "GET /a{b}",
            "GET /{}",
            "G-T /a",
            "GET /{a+b}",
        ] {
            assert!(RouteKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn most_specific_first_as_api_gateway_documents() {
        // The example of "Routing API requests" in the API Gateway guide.
        assert_eq!(
            sorted(&[
                "$default",
                "ANY /{proxy+}",
                "GET /pets/{proxy+}",
                "GET /pets/dog/{id}",
                "GET /pets/dog/1",
            ]),
            [
                "GET /pets/dog/1",
                "GET /pets/dog/{id}",
                "GET /pets/{proxy+}",
                "ANY /{proxy+}",
                "$default"
            ]
        );
    }

    #[test]
    fn the_walkthrough_routes() {
        assert_eq!(
            sorted(&[
                "ANY /files/{proxy+}",
                "GET /api/v1/order/{id}",
                "GET /healthz",
                "GET /api/v1/order",
                "POST /api/v1/order",
                "$default",
            ]),
            [
                "GET /api/v1/order/{id}",
                "GET /api/v1/order",
                "POST /api/v1/order",
                "GET /healthz",
                "ANY /files/{proxy+}",
                "$default"
            ]
        );
    }

    #[test]
    fn tie_breaks() {
        assert_eq!(
            sorted(&["ANY /a", "GET /a", "POST /a"]),
            ["GET /a", "POST /a", "ANY /a"],
            "a method before ANY"
        );
        assert_eq!(
            sorted(&["GET /a/{x}/c", "GET /a/b/{y}"]),
            ["GET /a/b/{y}", "GET /a/{x}/c"],
            "leftmost literal"
        );
        assert_eq!(
            sorted(&[
                "ANY /{p+}",
                "ANY /a/b/{p+}",
                "ANY /a/{p+}",
                "GET /{x}/{y}/{z}/{w}"
            ]),
            [
                "GET /{x}/{y}/{z}/{w}",
                "ANY /a/b/{p+}",
                "ANY /a/{p+}",
                "ANY /{p+}"
            ],
            "full matches before greedy ones, longer fixed part first"
        );
        assert!(key("GET /a/{x}").same_route(&key("get /a/{y}")));
        assert!(!key("GET /a/{x}").same_route(&key("POST /a/{x}")));
        assert!(!key("GET /a/b").same_route(&key("GET /a/{b}")));
    }
}
