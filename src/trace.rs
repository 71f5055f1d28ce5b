//! An optional record of each check a decision went through, in order. The
//! filter passes [`NoTrace`] (nothing is formatted); `jwt-policy explain`
//! collects the steps to show operators why a token was refused.

use std::fmt;

/// The checks, in the order the policy runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Path,
    Rule,
    Provider,
    Token,
    Cache,
    Parse,
    Algorithm,
    Key,
    Signature,
    Expiry,
    NotBefore,
    IssuedAt,
    Issuer,
    Audience,
    TokenUse,
    Claim,
    Scopes,
    AllScopes,
    RuleClaim,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Path => "path",
            Check::Rule => "rule",
            Check::Provider => "provider",
            Check::Token => "token",
            Check::Cache => "cache",
            Check::Parse => "parse",
            Check::Algorithm => "alg",
            Check::Key => "key",
            Check::Signature => "signature",
            Check::Expiry => "exp",
            Check::NotBefore => "nbf",
            Check::IssuedAt => "iat",
            Check::Issuer => "iss",
            Check::Audience => "aud",
            Check::TokenUse => "token_use",
            Check::Claim => "claim",
            Check::Scopes => "scopes",
            Check::AllScopes => "all_scopes",
            Check::RuleClaim => "rule_claim",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Receives each check as it is made. `detail` is only called by tracers
/// that keep it.
pub trait Trace {
    fn step(&mut self, check: Check, passed: bool, detail: &dyn Fn() -> String);

    /// Whether steps are kept at all; when not, the decision does no work
    /// to tell them (the filter's case).
    fn keeps(&self) -> bool {
        true
    }
}

/// Keeps nothing.
pub struct NoTrace;

impl Trace for NoTrace {
    fn step(&mut self, _: Check, _: bool, _: &dyn Fn() -> String) {}

    fn keeps(&self) -> bool {
        false
    }
}

/// One recorded check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub check: Check,
    pub passed: bool,
    pub detail: String,
}

/// Keeps every step.
#[derive(Debug, Default)]
pub struct Steps(pub Vec<Step>);

impl Trace for Steps {
    fn step(&mut self, check: Check, passed: bool, detail: &dyn Fn() -> String) {
        self.0.push(Step {
            check,
            passed,
            detail: detail(),
        });
    }
}
