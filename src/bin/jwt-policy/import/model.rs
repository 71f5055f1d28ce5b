//! The plugin configuration the importer writes. `src/config.rs` describes
//! the document for reading (deserialize-only); these types write it, with
//! fields in a reading order and absent fields left out. Every output is
//! compiled by the filter's own parser before it is emitted.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub providers: BTreeMap<String, Provider>,
    pub rules: Vec<Rule>,
    pub unmatched: Unmatched,
    /// API Gateway with CORS configured answers preflights itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bypass_cors_preflight: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    Deny,
    Allow,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Provider {
    pub issuer: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_use: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_jwks: Option<RemoteJwks>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_secret_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_exp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_headers: Option<Vec<HeaderLocation>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RemoteJwks {
    pub cluster: String,
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_ttl_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderLocation {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A claim check; `one_of: None` means "must be present" (with `required`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub claim: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

impl Claim {
    /// `claim` must equal one of `values` (or be an array holding one).
    pub fn one_of(claim: &str, values: Vec<Value>, required: bool) -> Claim {
        Claim {
            claim: claim.to_owned(),
            one_of: Some(values),
            required: (!required).then_some(false),
        }
    }

    /// `claim` must be present.
    pub fn present(claim: &str) -> Claim {
        Claim {
            claim: claim.to_owned(),
            one_of: None,
            required: Some(true),
        }
    }

    /// For reports: `client_id one of ["a"]`, `nbf present`.
    pub fn describe(&self) -> String {
        let optional = if self.required == Some(false) {
            " (when present)"
        } else {
            ""
        };
        match &self.one_of {
            Some(values) => format!(
                "{} one of {}{optional}",
                self.claim,
                Value::Array(values.clone())
            ),
            None => format!("{} present", self.claim),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub name: String,
    #[serde(rename = "match")]
    pub match_: Match,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_anonymous: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_missing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires: Option<Requires>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Match {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
}

impl Match {
    /// For reports: `path_template /a/{id}, methods GET`, or `any request`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.path {
            parts.push(format!("path {p}"));
        }
        if let Some(p) = &self.path_template {
            parts.push(format!("path_template {p}"));
        }
        if let Some(p) = &self.prefix {
            parts.push(format!("prefix {p}"));
        }
        if let Some(h) = &self.hosts {
            parts.push(format!("hosts {}", h.join(" ")));
        }
        if let Some(m) = &self.methods {
            parts.push(format!("methods {}", m.join(" ")));
        }
        if parts.is_empty() {
            "any request".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Requires {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub all_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
}

impl Requires {
    pub fn describe(&self) -> String {
        let who = match (&self.provider, self.providers.as_slice()) {
            (Some(p), _) => format!("a token from {p}"),
            (None, []) => "a token".to_owned(),
            (None, several) => format!("a token from any of {}", several.join(" ")),
        };
        let mut parts = vec![who];
        if !self.scopes.is_empty() {
            parts.push(format!("any of scopes {}", self.scopes.join(" ")));
        }
        if !self.all_scopes.is_empty() {
            parts.push(format!("all of scopes {}", self.all_scopes.join(" ")));
        }
        for c in &self.claims {
            parts.push(format!("claim {}", c.describe()));
        }
        parts.join(", ")
    }
}

impl Rule {
    pub fn describe(&self) -> String {
        let access = match (&self.requires, self.allow_anonymous, self.allow_missing) {
            (_, true, _) => "anonymous".to_owned(),
            (Some(r), _, true) => format!("{} when a token is sent", r.describe()),
            (Some(r), _, false) => r.describe(),
            (None, _, _) => "no requirement".to_owned(),
        };
        format!("{}; {access}", self.match_.describe())
    }
}

/// A name the filter accepts for providers and rules: letters, digits, `_`
/// and `-`, at most 64; camel case becomes snake case
/// (`OrderAuthorizer` -> `order_authorizer`, `JWTAuthorizer` ->
/// `jwt_authorizer`), anything else becomes `_`.
pub fn name_from(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| chars.get(j));
        let next = chars.get(i.saturating_add(1));
        if c.is_ascii_uppercase() {
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || *c == '-' || *c == '_' {
            out.push(*c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_matches('_');
    let mut out: String = out.chars().take(64).collect();
    if out.is_empty() {
        out.push_str("unnamed");
    }
    out
}

/// `base`, or `base_2`, `base_3`... when `taken` already holds it.
pub fn unique_name(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_owned();
    }
    (2u32..)
        .map(|n| {
            let suffix = format!("_{n}");
            let keep = 64usize.saturating_sub(suffix.len());
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        })
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_else(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_from("OrderAuthorizer"), "order_authorizer");
        assert_eq!(name_from("JWTAuthorizer"), "jwt_authorizer");
        assert_eq!(name_from("jwt-authorizer-oauth"), "jwt-authorizer-oauth");
        assert_eq!(name_from("GET /api/v1/order/{id}"), "get_api_v1_order_id");
        assert_eq!(name_from("$default"), "default");
        assert_eq!(name_from("///"), "unnamed");
        assert_eq!(name_from(&"a".repeat(100)).len(), 64);
        assert_eq!(name_from("MyOAuth2Auth"), "my_o_auth2_auth");
        let taken = vec!["a".to_owned(), "a_2".to_owned()];
        assert_eq!(unique_name("a", &taken), "a_3");
        assert_eq!(unique_name("b", &taken), "b");
    }

    #[test]
    fn serializes_in_reading_order_without_absent_fields() {
        let rule = Rule {
            name: "r".into(),
            match_: Match {
                path: Some("/x".into()),
                methods: Some(vec!["GET".into()]),
                ..Match::default()
            },
            allow_anonymous: false,
            allow_missing: false,
            requires: Some(Requires {
                provider: Some("p".into()),
                scopes: vec!["s".into()],
                ..Requires::default()
            }),
        };
        assert_eq!(
            serde_json::to_string(&rule).unwrap(),
            r#"{"name":"r","match":{"path":"/x","methods":["GET"]},"requires":{"provider":"p","scopes":["s"]}}"#
        );
        assert_eq!(
            serde_json::to_string(&Claim::present("nbf")).unwrap(),
            r#"{"claim":"nbf","required":true}"#
        );
        assert_eq!(
            serde_json::to_string(&Claim::one_of("a", vec!["b".into()], false)).unwrap(),
            r#"{"claim":"a","one_of":["b"],"required":false}"#
        );
    }
}
