//! Denials and the responses that explain them (RFC 6750 §3): status,
//! `WWW-Authenticate` challenge and a small JSON body. No token text, no
//! internals.

use std::borrow::Cow;
use std::fmt;

/// Why a request was (or, in report mode, would have been) denied. The
/// names are the stats labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenyReason {
    Missing,
    Malformed,
    Signature,
    UnknownKid,
    Algorithm,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    TokenUse,
    Claim,
    Scope,
    JwksUnavailable,
    Unmatched,
    /// The request path is ambiguous, or not normal under `reject`.
    Path,
    /// Envoy selected another route after the filter's edits, and the
    /// decision could not be repeated for it (route check).
    Rerouted,
    /// The token's `iss` is none of the rule's providers (rules with
    /// several providers).
    UnknownIssuer,
}

impl DenyReason {
    pub const ALL: [DenyReason; 17] = [
        DenyReason::Missing,
        DenyReason::Malformed,
        DenyReason::Signature,
        DenyReason::UnknownKid,
        DenyReason::Algorithm,
        DenyReason::Expired,
        DenyReason::NotYetValid,
        DenyReason::Issuer,
        DenyReason::Audience,
        DenyReason::TokenUse,
        DenyReason::Claim,
        DenyReason::Scope,
        DenyReason::JwksUnavailable,
        DenyReason::Unmatched,
        DenyReason::Path,
        DenyReason::Rerouted,
        DenyReason::UnknownIssuer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DenyReason::Missing => "missing",
            DenyReason::Malformed => "malformed",
            DenyReason::Signature => "signature",
            DenyReason::UnknownKid => "unknown_kid",
            DenyReason::Algorithm => "algorithm",
            DenyReason::Expired => "expired",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::Issuer => "issuer",
            DenyReason::Audience => "audience",
            DenyReason::TokenUse => "token_use",
            DenyReason::Claim => "claim",
            DenyReason::Scope => "scope",
            DenyReason::JwksUnavailable => "jwks_unavailable",
            DenyReason::Unmatched => "unmatched",
            DenyReason::Path => "path",
            DenyReason::Rerouted => "rerouted",
            DenyReason::UnknownIssuer => "unknown_issuer",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The RFC 6750 error code of a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No credentials: the challenge carries no error code (RFC 6750 §3.1).
    None,
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    /// The keys to check tokens with are not available (503).
    TemporarilyUnavailable,
}

impl ErrorCode {
    fn name(self) -> &'static str {
        match self {
            ErrorCode::None => "unauthorized",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A decision to refuse a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    pub status: u16,
    pub code: ErrorCode,
    /// Short, fixed or sanitised text for `error_description`.
    pub description: Cow<'static, str>,
    /// The scopes the rule asks for (403 only).
    pub scope: Option<String>,
    /// Seconds a client should wait before retrying (503 only).
    pub retry_after_s: Option<u64>,
}

impl Denial {
    /// No token where one is required: 401 without an error code.
    pub fn missing() -> Denial {
        Denial {
            reason: DenyReason::Missing,
            status: 401,
            code: ErrorCode::None,
            description: Cow::Borrowed("bearer token required"),
            scope: None,
            retry_after_s: None,
        }
    }

    /// Several tokens, or a token location used twice: 401 invalid_request.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Denial {
        Denial {
            reason: DenyReason::Malformed,
            status: 401,
            code: ErrorCode::InvalidRequest,
            description: description.into(),
            scope: None,
            retry_after_s: None,
        }
    }

    /// A token that is not acceptable: 401 invalid_token.
    pub fn invalid_token(reason: DenyReason, description: impl Into<Cow<'static, str>>) -> Denial {
        Denial {
            reason,
            status: 401,
            code: ErrorCode::InvalidToken,
            description: description.into(),
            scope: None,
            retry_after_s: None,
        }
    }

    /// A valid token that does not grant this request: 403
    /// insufficient_scope, naming the scopes the rule asks for.
    pub fn forbidden(
        reason: DenyReason,
        description: impl Into<Cow<'static, str>>,
        scope: Option<String>,
    ) -> Denial {
        Denial {
            reason,
            status: 403,
            code: ErrorCode::InsufficientScope,
            description: description.into(),
            scope,
            retry_after_s: None,
        }
    }

    /// A path the policy cannot decide on as the upstream would read it:
    /// 400 invalid_request (RFC 6750 §3.1).
    pub fn bad_path(problem: crate::path::PathProblem) -> Denial {
        Denial {
            reason: DenyReason::Path,
            status: 400,
            code: ErrorCode::InvalidRequest,
            description: Cow::Borrowed(problem.description()),
            scope: None,
            retry_after_s: None,
        }
    }

    /// The filter has no policy (its configuration never loaded): 503.
    pub fn not_configured() -> Denial {
        Denial {
            description: Cow::Borrowed("policy not configured"),
            ..Denial::keys_unavailable(1)
        }
    }

    /// No keys to check the token with: 503, retry later.
    pub fn keys_unavailable(retry_after_s: u64) -> Denial {
        Denial {
            reason: DenyReason::JwksUnavailable,
            status: 503,
            code: ErrorCode::TemporarilyUnavailable,
            description: Cow::Borrowed("signing keys are not available"),
            scope: None,
            retry_after_s: Some(retry_after_s.max(1)),
        }
    }

    /// The `WWW-Authenticate` value for this denial.
    pub fn challenge(&self, realm: &str) -> String {
        let mut out = format!("Bearer realm=\"{}\"", quoted(realm));
        match self.code {
            ErrorCode::None | ErrorCode::TemporarilyUnavailable => {}
            code => {
                out.push_str(&format!(
                    ", error=\"{}\", error_description=\"{}\"",
                    code.name(),
                    quoted(&self.description)
                ));
            }
        }
        if let Some(scope) = &self.scope {
            out.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        out
    }

    /// The JSON body for this denial.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": self.code.name(),
            "error_description": self.description,
        })
        .to_string()
    }

    /// The complete local response.
    pub fn response(&self, realm: &str) -> HttpResponse {
        let mut headers = vec![
            ("www-authenticate", self.challenge(realm)),
            ("content-type", "application/json".to_owned()),
            ("cache-control", "no-store".to_owned()),
        ];
        if let Some(seconds) = self.retry_after_s {
            headers.push(("retry-after", seconds.to_string()));
        }
        HttpResponse {
            status: self.status,
            headers,
            body: self.body(),
        }
    }
}

/// A response the filter answers with instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Text made safe for an RFC 7230 quoted-string: printable ASCII only, with
/// `"` and `\` escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let r = Denial::missing().response("api");
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "unauthorized");
    }

    #[test]
    fn invalid_token_challenge() {
        let d = Denial::invalid_token(DenyReason::Expired, "token expired");
        assert_eq!(
            d.challenge("api"),
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token expired\""
        );
        assert_eq!(d.response("api").status, 401);
    }

    #[test]
    fn insufficient_scope_names_the_scopes() {
        let d = Denial::forbidden(
            DenyReason::Scope,
            "token lacks the required scope",
            Some("order/get.order order/admin".into()),
        );
        let r = d.response("orders");
        assert_eq!(r.status, 403);
        assert_eq!(
            r.header("www-authenticate").unwrap(),
            "Bearer realm=\"orders\", error=\"insufficient_scope\", \
             error_description=\"token lacks the required scope\", \
             scope=\"order/get.order order/admin\""
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }

    #[test]
    fn bad_paths_are_invalid_requests() {
        let r = Denial::bad_path(crate::path::PathProblem::NotNormal).response("api");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.header("www-authenticate").unwrap(),
            "Bearer realm=\"api\", error=\"invalid_request\", \
             error_description=\"path is not in normal form\""
        );
    }

    #[test]
    fn unavailable_keys_say_when_to_retry() {
        let r = Denial::keys_unavailable(0).response("api");
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    }

    #[test]
    fn quoting_is_safe() {
        let d = Denial::invalid_token(DenyReason::Claim, "bad \"x\"\\\r\n");
        assert!(d.challenge("a\"b").contains("realm=\"a\\\"b\""));
        assert!(
            d.challenge("r")
                .ends_with("error_description=\"bad \\\"x\\\"\\\\??\"")
        );
    }

    #[test]
    fn reason_names_are_stable() {
        let names: Vec<_> = DenyReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "missing",
                "malformed",
                "signature",
                "unknown_kid",
                "algorithm",
                "expired",
                "not_yet_valid",
                "issuer",
                "audience",
                "token_use",
                "claim",
                "scope",
                "jwks_unavailable",
                "unmatched",
                "path",
                "rerouted",
                "unknown_issuer",
            ]
        );
    }
}
