//! Unit tests of the mesh-wide policy features: rules by host and path
//! template, several providers per rule, optional tokens, CORS preflights,
//! claims for filter state.

use serde_json::{Value, json};

use super::tests::{Run, assert_denied, edits, policy_from, run_with};
use super::*;
use crate::policy::CacheSettings;
use crate::request::RecordedRequest;
use crate::testkit::{self, CLIENT, ISSUER, NOW, cognito};
use crate::trace::Steps;

const OTHER_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other";

fn allowed(r: &Run) -> &Grant {
    match &r.eval.outcome {
        Outcome::Allow(g) => g,
        other => panic!("expected the request to be allowed, got {other:?}"),
    }
}

fn two_pools() -> Value {
    json!({
      "providers": {
        "orders": {
          "issuer": ISSUER,
          "local_jwks": testkit::jwks(),
          "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }],
          "claims_to_filter_state": [{ "claim": "client_id", "name": "client_id" }]
        },
        "partners": {
          "issuer": OTHER_ISSUER,
          "local_jwks": testkit::other_jwks(),
          "from_headers": [{ "name": "x-partner-token" }],
          "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }]
        }
      },
      "rules": [
        { "name": "preflight-free", "match": { "hosts": ["api.example.com", "*.internal.example.com"],
                                               "path_template": "/orders/{id}" },
          "requires": { "providers": ["orders", "partners"], "scopes": ["orders/read"] } },
        { "name": "files", "match": { "path_template": "/files/{proxy+}" },
          "requires": { "provider": "orders" } },
        { "name": "catalog", "match": { "prefix": "/catalog" },
          "requires": { "provider": "orders" }, "allow_missing": true }
      ],
      "unmatched": "deny",
      "bypass_cors_preflight": true
    })
}

fn token(iss: &str, scope: &str) -> String {
    let mut c = cognito(scope);
    c["iss"] = json!(iss);
    if iss == ISSUER {
        testkit::rs256(c)
    } else {
        testkit::rs256_other(c)
    }
}

fn get(authority: &str, path: &str) -> RecordedRequest {
    RecordedRequest::get(path).with_authority(authority)
}

fn options(authority: &str, path: &str) -> RecordedRequest {
    RecordedRequest::new("OPTIONS", path).with_authority(authority)
}

#[test]
fn hosts_and_path_templates_pick_the_rule() {
    let p = policy_from(&two_pools());
    let t = token(ISSUER, "orders/read");
    for (authority, path, rule) in [
        ("api.example.com", "/orders/42", Some(0)),
        ("API.Example.com.:443", "/orders/42", Some(0)),
        ("eu.internal.example.com", "/orders/42", Some(0)),
        // Not a host of the rule, a sibling of the wildcard, or its apex.
        ("evil.example.com", "/orders/42", None),
        ("internal.example.com", "/orders/42", None),
        // `{id}` is one segment, never empty.
        ("api.example.com", "/orders/42/items", None),
        ("api.example.com", "/orders/", None),
        // Matched on the normal path: `..` cannot walk into a template.
        ("api.example.com", "/orders/42/../7", Some(0)),
        // `{proxy+}` is the rest of the path, at least one segment.
        ("any", "/files/a/b/c.txt", Some(1)),
        ("any", "/files/", None),
    ] {
        let r = run_with(&p, get(authority, path).bearer(&t), NOW, None);
        assert_eq!(
            r.eval.rule, rule,
            "{authority} {path}: {:?}",
            r.eval.outcome
        );
        if rule.is_none() {
            assert_denied(&r, DenyReason::Unmatched, 403);
        } else {
            allowed(&r);
        }
    }
}

#[test]
fn several_providers_the_tokens_iss_picks_whose_keys_verify() {
    let p = policy_from(&two_pools());
    let req = |t: &str| get("api.example.com", "/orders/1").bearer(t);
    // Each pool's token verifies with its own keys.
    let r = run_with(&p, req(&token(ISSUER, "orders/read")), NOW, None);
    allowed(&r);
    assert_eq!(r.eval.provider, Some(0));
    // The partners' pool reads its own header, and the rule reads every
    // place any of its providers does.
    let partner = token(OTHER_ISSUER, "orders/read");
    let r = run_with(
        &p,
        get("api.example.com", "/orders/1").with_header("x-partner-token", partner.as_bytes()),
        NOW,
        None,
    );
    assert_eq!(allowed(&r).headers, [("x-client-id".into(), CLIENT.into())]);
    assert_eq!(r.eval.provider, Some(1));
    // A token in a place only the other provider reads is refused.
    let r = run_with(&p, req(&partner), NOW, None);
    assert_denied(&r, DenyReason::Malformed, 401);
    assert_eq!(r.eval.provider, Some(1), "named though refused");
    // An issuer neither provider has: refused before any key is tried.
    let r = run_with(
        &p,
        req(&token("https://evil.example.com", "orders/read")),
        NOW,
        None,
    );
    assert_denied(&r, DenyReason::UnknownIssuer, 401);
    assert_eq!(r.eval.provider, None);
    // One pool's iss with the other pool's signature: the iss only picks
    // the keys, the signature still decides.
    let mut forged = cognito("orders/read");
    forged["iss"] = json!(ISSUER);
    let r = run_with(&p, req(&testkit::rs256_other(forged)), NOW, None);
    assert_denied(&r, DenyReason::Signature, 401);
    assert_eq!(r.eval.provider, Some(0));
}

#[test]
fn several_providers_a_cached_token_names_its_provider() {
    let p = policy_from(&two_pools());
    let mut cache = TokenCache::new(CacheSettings::default());
    let t = token(ISSUER, "orders/read");
    let req = || get("api.example.com", "/orders/1").bearer(&t);
    let r = run_with(&p, req(), NOW, Some(&mut cache));
    assert_eq!((r.eval.cache, r.eval.provider), (CacheUse::Miss, Some(0)));
    let r = run_with(&p, req(), NOW + 1, Some(&mut cache));
    assert_eq!((r.eval.cache, r.eval.provider), (CacheUse::Hit, Some(0)));
    allowed(&r);
}

#[test]
fn allow_missing_passes_requests_without_a_token_but_checks_any_token() {
    let p = policy_from(&two_pools());
    // No token: through, without claim headers, and a spoofed one goes.
    let anonymous = get("any", "/catalog/books").with_header("x-client-id", b"admin");
    let r = run_with(&p, anonymous, NOW, None);
    assert!(allowed(&r).headers.is_empty());
    assert_eq!(edits(&r).remove, ["x-client-id"]);
    assert_eq!(r.eval.provider, Some(0));
    // A valid token: its claims reach the upstream.
    let good = token(ISSUER, "");
    let r = run_with(&p, get("any", "/catalog").bearer(&good), NOW, None);
    assert_eq!(edits(&r).get("x-client-id"), Some(CLIENT.as_bytes()));
    // A bad token is not the same as none.
    let mut expired = cognito("");
    expired["exp"] = json!(NOW - 3600);
    let r = run_with(
        &p,
        get("any", "/catalog").bearer(&testkit::rs256(expired)),
        NOW,
        None,
    );
    assert_denied(&r, DenyReason::Expired, 401);
    // Without allow_missing, no token is still 401.
    let r = run_with(&p, get("any", "/files/a"), NOW, None);
    assert_denied(&r, DenyReason::Missing, 401);
}

#[test]
fn cors_preflights_pass_without_a_token_only_when_configured() {
    let preflight = || {
        options("api.example.com", "/orders/1")
            .with_header("origin", b"https://app.example.com")
            .with_header("access-control-request-method", b"DELETE")
    };
    let p = policy_from(&two_pools());
    let r = run_with(&p, preflight(), NOW, None);
    allowed(&r);
    assert_eq!(r.eval.rule, None, "decided before any rule");
    // Not a preflight: an OPTIONS without Access-Control-Request-Method.
    let plain =
        options("api.example.com", "/orders/1").with_header("origin", b"https://app.example.com");
    let r = run_with(&p, plain, NOW, None);
    assert_denied(&r, DenyReason::Missing, 401);
    let mut off = two_pools();
    off["bypass_cors_preflight"] = json!(false);
    let r = run_with(&policy_from(&off), preflight(), NOW, None);
    assert_denied(&r, DenyReason::Missing, 401);
}

#[test]
fn claims_for_filter_state_come_with_a_token_that_passed_its_provider() {
    let p = policy_from(&two_pools());
    // Refused by the rule (scope), not by the provider: the client is
    // still named for the access log.
    let t = token(ISSUER, "other/scope");
    let r = run_with(
        &p,
        get("api.example.com", "/orders/1").bearer(&t),
        NOW,
        None,
    );
    assert_denied(&r, DenyReason::Scope, 403);
    assert_eq!(r.eval.claim_state, [("client_id".into(), CLIENT.into())]);
    // Refused by the provider: nothing from the token is trusted.
    let bad = testkit::unsigned(
        json!({"alg": "RS256", "kid": "rsa-1"}),
        cognito("orders/read"),
    );
    let r = run_with(
        &p,
        get("api.example.com", "/orders/1").bearer(&bad),
        NOW,
        None,
    );
    assert!(r.eval.claim_state.is_empty());
}

#[test]
fn bootstrap_keys_verify_when_the_configuration_is_all_there_is() {
    let mut c = two_pools();
    c["providers"]["orders"]["remote_jwks"] =
        json!({"cluster": "idp", "uri": "https://idp.example.com/jwks.json"});
    let p = policy_from(&c);
    assert!(p.providers[0].bootstrap.is_some());
    let r = run_with(
        &p,
        get("any", "/files/x").bearer(&token(ISSUER, "")),
        NOW,
        None,
    );
    allowed(&r);
}

#[test]
fn the_trace_names_the_provider_and_the_preflight() {
    let p = policy_from(&two_pools());
    let mut steps = Steps::default();
    let t = token(OTHER_ISSUER, "orders/read");
    let req = get("api.example.com", "/orders/1").with_header("x-partner-token", t.as_bytes());
    super::tests::decide(&p, &req, NOW, None, &mut steps);
    let provider = steps
        .0
        .iter()
        .find(|s| s.check == crate::trace::Check::Provider);
    assert_eq!(
        provider.map(|s| (s.passed, s.detail.as_str())),
        Some((true, "provider partners"))
    );
    let mut steps = Steps::default();
    let preflight = options("api.example.com", "/orders/1")
        .with_header("origin", b"https://app.example.com")
        .with_header("access-control-request-method", b"GET");
    super::tests::decide(&p, &preflight, NOW, None, &mut steps);
    assert!(
        steps
            .0
            .first()
            .is_some_and(|s| s.passed && s.detail.contains("CORS preflight"))
    );
}
