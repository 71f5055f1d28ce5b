//! Every claim check, in one place: the provider's (time `exp`/`nbf`/`iat`,
//! issuer, audience, `token_use`, the provider's `claims`: a failure is 401)
//! after the signature is known to be good, and the rule's (scopes and rule
//! `claims`: a failure is 403) on every request, cached tokens included.

use serde_json::{Map, Value};

use crate::policy::{Provider, TokenRequirement};
use crate::token::Claims;

/// A configured claim check (`claims[]` of a provider or a rule).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRule {
    pub claim: String,
    /// `None`: the claim must only be present.
    pub one_of: Option<Vec<Value>>,
    pub required: bool,
}

/// How a claim check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    Pass,
    /// Absent and not required.
    Skipped,
    Missing,
    Mismatch,
}

impl ClaimRule {
    pub fn check(&self, claims: &Map<String, Value>) -> ClaimOutcome {
        match lookup(claims, &self.claim) {
            None | Some(Value::Null) if self.required => ClaimOutcome::Missing,
            None | Some(Value::Null) => ClaimOutcome::Skipped,
            Some(_) if self.one_of.is_none() => ClaimOutcome::Pass,
            Some(Value::Array(items)) => {
                if items.iter().any(|item| self.accepts(item)) {
                    ClaimOutcome::Pass
                } else {
                    ClaimOutcome::Mismatch
                }
            }
            Some(value) if self.accepts(value) => ClaimOutcome::Pass,
            Some(_) => ClaimOutcome::Mismatch,
        }
    }

    fn accepts(&self, value: &Value) -> bool {
        self.one_of
            .iter()
            .flatten()
            .any(|want| scalar_eq(want, value))
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64().is_some() && x.as_f64() == y.as_f64()
            }
        }
        _ => false,
    }
}

/// Finds a claim by name or dotted path. A top-level member whose name is
/// exactly `path` wins (claims such as `https://example.com/roles` contain
/// dots); otherwise the path is followed through nested objects.
pub fn lookup<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// A claim as a header value: strings as they are, numbers and booleans in
/// JSON form, arrays of those joined by single spaces. Objects, nulls,
/// nested arrays and values that cannot be a header value (control
/// characters, or longer than `max_len`) give `None`.
pub fn header_value(value: &Value, max_len: usize) -> Option<String> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let text = match value {
        Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()?
            .join(" "),
        other => scalar(other)?,
    };
    let safe = text.len() <= max_len
        && text
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80);
    safe.then_some(text)
}

/// Why a token's claims are not accepted by its provider, in the order the
/// checks run ([`validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimFailure {
    Time(TimeOutcome),
    Issuer,
    Audience,
    TokenUse,
    /// A claim of the provider's `claims` (its index), missing or not
    /// accepted.
    Claim(usize, ClaimOutcome),
}

/// The provider's checks on a token's claims, in order: time (with the
/// provider's skew), issuer, audience, `token_use`, the provider's claims.
pub fn validate(provider: &Provider, claims: &Claims, now: u64) -> Result<(), ClaimFailure> {
    check_time(
        &TimeClaims::from(claims),
        now,
        provider.clock_skew_s,
        provider.require_exp,
    )?;
    if claims.iss.as_deref() != Some(provider.issuer.as_str()) {
        return Err(ClaimFailure::Issuer);
    }
    if !audience_ok(claims, &provider.audiences) {
        return Err(ClaimFailure::Audience);
    }
    if let Some(want) = &provider.token_use
        && claims.token_use.as_deref() != Some(want.as_str())
    {
        return Err(ClaimFailure::TokenUse);
    }
    for (i, rule) in provider.claims.iter().enumerate() {
        match rule.check(&claims.all) {
            ClaimOutcome::Pass | ClaimOutcome::Skipped => {}
            failed => return Err(ClaimFailure::Claim(i, failed)),
        }
    }
    Ok(())
}

/// Why a valid token does not grant a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzFailure {
    /// None of the rule's `scopes`.
    AnyScope,
    /// Not every one of the rule's `all_scopes`.
    AllScopes,
    /// A claim of the rule's `claims` (its index).
    Claim(usize, ClaimOutcome),
}

/// The rule's checks: any of `scopes`, all of `all_scopes`, its claims.
pub fn authorize(
    requirement: &TokenRequirement,
    scopes: &[String],
    claims: &Map<String, Value>,
) -> Result<(), AuthzFailure> {
    if !scopes_ok(scopes, &requirement.any_scopes, &[]) {
        return Err(AuthzFailure::AnyScope);
    }
    if !scopes_ok(scopes, &[], &requirement.all_scopes) {
        return Err(AuthzFailure::AllScopes);
    }
    for (i, rule) in requirement.claims.iter().enumerate() {
        match rule.check(claims) {
            ClaimOutcome::Pass | ClaimOutcome::Skipped => {}
            failed => return Err(AuthzFailure::Claim(i, failed)),
        }
    }
    Ok(())
}

/// Why the time claims refuse a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOutcome {
    Expired,
    MissingExp,
    NotYetValid,
    IssuedInFuture,
}

/// `exp` (required unless `require_exp` is false), `nbf`, `iat` not in the
/// future, all with a tolerance of `skew` seconds: checked for new tokens
/// and again on every cache hit.
pub fn check_time(
    claims: &TimeClaims,
    now: u64,
    skew: u64,
    require_exp: bool,
) -> Result<(), ClaimFailure> {
    let fail = |t| Err(ClaimFailure::Time(t));
    match claims.exp {
        Some(exp) if now >= exp.saturating_add(skew) => return fail(TimeOutcome::Expired),
        None if require_exp => return fail(TimeOutcome::MissingExp),
        _ => {}
    }
    if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return fail(TimeOutcome::NotYetValid);
    }
    if claims.iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return fail(TimeOutcome::IssuedInFuture);
    }
    Ok(())
}

/// The time-dependent claims, kept apart so cached tokens can be re-checked
/// without the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeClaims {
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
    pub iat: Option<u64>,
}

impl From<&Claims> for TimeClaims {
    fn from(c: &Claims) -> Self {
        TimeClaims {
            exp: c.exp,
            nbf: c.nbf,
            iat: c.iat,
        }
    }
}

/// The audience rule of AWS API Gateway's JWT authorizer: `aud` must hold
/// one of `audiences`; a token without `aud` passes when its `client_id` is
/// one of them (Cognito access tokens carry `client_id`, not `aud`).
pub fn audience_ok(claims: &Claims, audiences: &[String]) -> bool {
    if audiences.is_empty() {
        return true;
    }
    match &claims.aud {
        Some(aud) => aud.iter().any(|a| audiences.contains(a)),
        None => claims
            .client_id
            .as_ref()
            .is_some_and(|c| audiences.contains(c)),
    }
}

/// Scope rules of a route: `any` passes when the token holds one of them
/// (empty: no condition), `all` when it holds every one.
pub fn scopes_ok(scopes: &[String], any: &[String], all: &[String]) -> bool {
    let has = |s: &String| scopes.contains(s);
    (any.is_empty() || any.iter().any(has)) && all.iter().all(has)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn rule(claim: &str, one_of: Value, required: bool) -> ClaimRule {
        ClaimRule {
            claim: claim.into(),
            one_of: one_of.as_array().cloned(),
            required,
        }
    }

    #[test]
    fn claim_rules() {
        let c = map(json!({
            "client_id": "abc", "groups": ["a", "b"], "level": 3, "admin": true,
            "org": {"id": "o1", "tier": {"name": "gold"}},
            "https://example.com/roles": "r1", "nothing": null
        }));
        use ClaimOutcome::*;
        assert_eq!(rule("client_id", json!(["abc", "x"]), true).check(&c), Pass);
        assert_eq!(rule("client_id", json!(["x"]), true).check(&c), Mismatch);
        assert_eq!(rule("groups", json!(["b"]), true).check(&c), Pass);
        assert_eq!(rule("groups", json!(["c"]), true).check(&c), Mismatch);
        assert_eq!(rule("level", json!([3]), true).check(&c), Pass);
        assert_eq!(rule("level", json!([3.0]), true).check(&c), Pass);
        assert_eq!(rule("level", json!(["3"]), true).check(&c), Mismatch);
        assert_eq!(rule("admin", json!([true]), true).check(&c), Pass);
        assert_eq!(rule("org.id", json!(["o1"]), true).check(&c), Pass);
        assert_eq!(rule("org.tier.name", json!(["gold"]), true).check(&c), Pass);
        assert_eq!(rule("org", json!(["o1"]), true).check(&c), Mismatch);
        assert_eq!(
            rule("https://example.com/roles", json!(["r1"]), true).check(&c),
            Pass
        );
        assert_eq!(rule("absent", json!(["x"]), true).check(&c), Missing);
        assert_eq!(rule("absent", json!(["x"]), false).check(&c), Skipped);
        assert_eq!(rule("nothing", json!(["x"]), true).check(&c), Missing);
        assert_eq!(rule("org.nope", json!(["x"]), false).check(&c), Skipped);
        // A present claim is checked even when not required.
        assert_eq!(rule("client_id", json!(["x"]), false).check(&c), Mismatch);
        // Without one_of: present is enough.
        assert_eq!(rule("org.id", json!(null), true).check(&c), Pass);
        assert_eq!(rule("groups", json!(null), true).check(&c), Pass);
        assert_eq!(rule("absent", json!(null), true).check(&c), Missing);
        assert_eq!(rule("nothing", json!(null), true).check(&c), Missing);
    }

    #[test]
    fn header_values() {
        assert_eq!(header_value(&json!("abc"), 100).as_deref(), Some("abc"));
        assert_eq!(header_value(&json!(5), 100).as_deref(), Some("5"));
        assert_eq!(header_value(&json!(true), 100).as_deref(), Some("true"));
        assert_eq!(
            header_value(&json!(["a", 1, false]), 100).as_deref(),
            Some("a 1 false")
        );
        assert_eq!(header_value(&json!({"a": 1}), 100), None);
        assert_eq!(header_value(&json!([["a"]]), 100), None);
        assert_eq!(header_value(&json!(null), 100), None);
        assert_eq!(header_value(&json!("a\r\nx-evil: 1"), 100), None);
        assert_eq!(header_value(&json!("a\u{0}"), 100), None);
        assert_eq!(header_value(&json!("abcdef"), 3), None);
        assert_eq!(header_value(&json!("héllo"), 100).as_deref(), Some("héllo"));
    }

    #[test]
    fn time_rules_with_skew() {
        let t = |exp, nbf, iat| TimeClaims { exp, nbf, iat };
        let check = |c: &TimeClaims, now, skew, req| match check_time(c, now, skew, req) {
            Ok(()) => None,
            Err(ClaimFailure::Time(t)) => Some(t),
            Err(other) => panic!("{other:?}"),
        };
        use TimeOutcome::*;
        let now = 1_000_000;
        let cases = [
            (t(Some(now + 1), None, None), 0, true, None),
            (t(Some(now), None, None), 0, true, Some(Expired)),
            (t(Some(now - 59), None, None), 60, true, None),
            (t(Some(now - 60), None, None), 60, true, Some(Expired)),
            (t(None, None, None), 60, true, Some(MissingExp)),
            (t(None, None, None), 60, false, None),
            (
                t(Some(now + 10), Some(now + 61), None),
                60,
                true,
                Some(NotYetValid),
            ),
            (t(Some(now + 10), Some(now + 60), None), 60, true, None),
            (
                t(Some(now + 10), None, Some(now + 61)),
                60,
                true,
                Some(IssuedInFuture),
            ),
            (t(Some(now + 10), None, Some(now + 60)), 60, true, None),
        ];
        for (claims, skew, require_exp, want) in cases {
            assert_eq!(check(&claims, now, skew, require_exp), want, "{claims:?}");
        }
        assert_eq!(
            check(&t(Some(u64::MAX - 10), None, None), u64::MAX, 60, true),
            Some(Expired)
        );
    }

    fn claims(v: Value) -> Claims {
        let token = format!(
            "{}.{}.{}",
            crate::b64::encode(br#"{"alg":"RS256"}"#),
            crate::b64::encode(v.to_string().as_bytes()),
            crate::b64::encode(b"s")
        );
        crate::token::parse(&token, &crate::limits::Limits::default())
            .unwrap()
            .claims
    }

    #[test]
    fn audiences_follow_api_gateway() {
        let auds = vec!["app".to_string(), "app2".to_string()];
        assert!(audience_ok(&claims(json!({"aud": "app"})), &auds));
        assert!(audience_ok(&claims(json!({"aud": ["x", "app2"]})), &auds));
        assert!(!audience_ok(&claims(json!({"aud": "x"})), &auds));
        assert!(!audience_ok(&claims(json!({"aud": []})), &auds));
        assert!(audience_ok(&claims(json!({"client_id": "app"})), &auds));
        assert!(!audience_ok(&claims(json!({"client_id": "x"})), &auds));
        assert!(!audience_ok(&claims(json!({})), &auds));
        // aud present but wrong: client_id does not rescue it.
        assert!(!audience_ok(
            &claims(json!({"aud": "x", "client_id": "app"})),
            &auds
        ));
        assert!(audience_ok(&claims(json!({})), &[]));
    }

    #[test]
    fn scope_rules() {
        let s = vec!["order/post.order".to_string(), "order/read".to_string()];
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(scopes_ok(&s, &v(&["order/post.order"]), &[]));
        assert!(scopes_ok(&s, &v(&["x", "order/read"]), &[]));
        assert!(!scopes_ok(&s, &v(&["x"]), &[]));
        assert!(scopes_ok(&s, &[], &v(&["order/post.order", "order/read"])));
        assert!(!scopes_ok(&s, &[], &v(&["order/post.order", "x"])));
        assert!(!scopes_ok(&s, &v(&["order/read"]), &v(&["x"])));
        assert!(scopes_ok(&s, &[], &[]));
        assert!(!scopes_ok(&[], &v(&["a"]), &[]));
    }
}
