//! Unit tests of the decision for one request: every rule of the policy,
//! with an injected clock and in-memory requests.

use serde_json::{Value, json};

use super::*;
use crate::config::Mode;
use crate::denial::ErrorCode;
use crate::plan::{Plan, plan};
use crate::policy::CacheSettings;
use crate::request::RecordedRequest;
use crate::signature::NoAcceleration;
use crate::testkit::{self, CLIENT, ISSUER, NOW, cognito};
use crate::trace::{NoTrace, Steps};

pub(super) fn config() -> Value {
    json!({
      "providers": {
        "cognito": {
          "issuer": ISSUER,
          "audiences": [CLIENT],
          "token_use": "access",
          "algorithms": ["RS256", "PS256", "ES256", "ES384", "EdDSA"],
          "local_jwks": testkit::jwks(),
          "from_headers": [{ "name": "authorization", "prefix": "Bearer " }],
          "from_params": ["access_token"],
          "from_cookies": ["session_token"],
          "claims": [{ "claim": "client_id", "one_of": [CLIENT], "required": true }],
          "claims_to_headers": [
            { "claim": "client_id", "header": "x-client-id" },
            { "claim": "scope", "header": "x-scopes" }
          ]
        }
      },
      "rules": [
        { "match": { "path": "/healthz" }, "allow_anonymous": true },
        { "match": { "prefix": "/api/v1/order", "methods": ["POST"] },
          "requires": { "provider": "cognito", "scopes": ["order/post.order"] } },
        { "match": { "prefix": "/api/v1/order", "methods": ["GET"] },
          "requires": { "provider": "cognito", "scopes": ["order/get.order", "order/admin"] } },
        { "match": { "route": "admin_route" },
          "requires": { "provider": "cognito", "all_scopes": ["order/admin", "order/audit"] } },
        { "match": { "prefix": "/tenant" },
          "requires": { "provider": "cognito", "claims": [{ "claim": "tenant", "one_of": ["t1"] }] } }
      ],
      "unmatched": "deny",
      "route_check": true
    })
}

pub(super) fn policy_from(v: &Value) -> Policy {
    Policy::from_json(v.to_string().as_bytes()).unwrap()
}

pub(super) struct Run {
    pub eval: Evaluation,
    pub plan: Plan,
}

/// `evaluate` with the policy's own keys and the pure-Rust verifier.
pub(super) fn decide(
    policy: &Policy,
    req: &RecordedRequest,
    now: u64,
    cache: Option<&mut TokenCache>,
    trace: &mut dyn crate::trace::Trace,
) -> Evaluation {
    let mut keys = ConfiguredKeys(policy);
    let mut env = Env {
        keys: &mut keys,
        verifier: &NoAcceleration,
        cache,
        now,
    };
    let head = req.head();
    evaluate(policy, &mut env, &req.view(&head), trace)
}

pub(super) fn run_with(
    policy: &Policy,
    req: RecordedRequest,
    now: u64,
    cache: Option<&mut TokenCache>,
) -> Run {
    let eval = decide(policy, &req, now, cache, &mut NoTrace);
    let plan = plan(policy, &eval, &req.head());
    Run { eval, plan }
}

fn run(req: RecordedRequest) -> Run {
    run_with(&policy_from(&config()), req, NOW, None)
}

fn post(token: &str) -> RecordedRequest {
    RecordedRequest::new("POST", "/api/v1/order").bearer(token)
}

pub(super) fn denied(r: &Run) -> &Denial {
    match &r.eval.outcome {
        Outcome::Deny(d) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

pub(super) fn assert_denied(r: &Run, reason: DenyReason, status: u16) {
    let d = denied(r);
    assert_eq!((d.reason, d.status), (reason, status), "{d:?}");
    let Plan::Respond(resp) = &r.plan else {
        panic!("expected a response")
    };
    assert_eq!(resp.status, status);
    let challenge = resp.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
    match status {
        401 if reason != DenyReason::Missing => {
            assert!(challenge.contains("error=\""), "{challenge}")
        }
        403 => assert!(
            challenge.contains("error=\"insufficient_scope\""),
            "{challenge}"
        ),
        _ => {}
    }
}

pub(super) fn edits(r: &Run) -> &crate::plan::Edits {
    match &r.plan {
        Plan::Forward(e) => e,
        other => panic!("expected the request to be forwarded, got {other:?}"),
    }
}

fn with(mut c: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(c.as_object_mut().unwrap());
    c
}

#[test]
fn valid_cognito_token_is_allowed_with_claim_headers() {
    let r = run(post(&testkit::rs256(cognito("order/post.order"))));
    let e = edits(&r);
    assert_eq!(e.get("x-client-id"), Some(CLIENT.as_bytes()));
    assert_eq!(e.get("x-scopes"), Some(&b"order/post.order"[..]));
    assert!(e.remove.is_empty(), "nothing to remove: {e:?}");

    // Copies sent by the client, in any case or with `_` for `-`, never
    // reach the upstream: they are replaced or removed.
    let spoofed = post(&testkit::rs256(cognito("order/post.order")))
        .with_header("x_client_id", b"evil")
        .with_header("X-Scopes", b"order/admin")
        .with_header("x-client-id", b"evil-too");
    let head = spoofed.head();
    let r = run(spoofed);
    let forwarded = edits(&r).apply(&head);
    let mut seen: Vec<(&[u8], &[u8])> = forwarded
        .iter()
        .filter(|(n, _)| n.starts_with(b"x"))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (&b"x-client-id"[..], CLIENT.as_bytes()),
            (&b"x-scopes"[..], &b"order/post.order"[..])
        ]
    );
    assert_eq!(r.eval.rule, Some(1));
    assert_eq!(r.eval.provider, Some(0));
    assert_eq!(r.eval.kid.as_deref(), Some("rsa-1"));
}

#[test]
fn every_asymmetric_algorithm_verifies() {
    for token in [
        testkit::ps256(cognito("order/post.order")),
        testkit::es256(cognito("order/post.order")),
        testkit::es384(cognito("order/post.order")),
        testkit::eddsa(cognito("order/post.order")),
    ] {
        let r = run(post(&token));
        assert!(
            matches!(r.eval.outcome, Outcome::Allow(_)),
            "{:?}",
            r.eval.outcome
        );
    }
}

#[test]
fn missing_token_is_401_without_error_code() {
    let r = run(RecordedRequest::new("POST", "/api/v1/order"));
    assert_denied(&r, DenyReason::Missing, 401);
    assert_eq!(denied(&r).code, ErrorCode::None);
    let Plan::Respond(resp) = &r.plan else {
        panic!()
    };
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
}

#[test]
fn time_claims_with_skew() {
    let mut c = cognito("order/post.order");
    c["exp"] = json!(NOW - 61);
    assert_denied(
        &run(post(&testkit::rs256(c.clone()))),
        DenyReason::Expired,
        401,
    );
    c["exp"] = json!(NOW - 59);
    assert!(
        matches!(
            run(post(&testkit::rs256(c))).eval.outcome,
            Outcome::Allow(_)
        ),
        "within skew"
    );

    let mut c = cognito("order/post.order");
    c["nbf"] = json!(NOW + 120);
    assert_denied(&run(post(&testkit::rs256(c))), DenyReason::NotYetValid, 401);

    let mut c = cognito("order/post.order");
    c["iat"] = json!(NOW + 120);
    assert_denied(&run(post(&testkit::rs256(c))), DenyReason::NotYetValid, 401);

    let mut c = cognito("order/post.order");
    c.as_object_mut().unwrap().remove("exp");
    let token = testkit::rs256(c);
    assert_denied(&run(post(&token)), DenyReason::Expired, 401);
    let lax = policy_from(&with(config(), |c| {
        c["providers"]["cognito"]["require_exp"] = json!(false);
    }));
    assert!(matches!(
        run_with(&lax, post(&token), NOW, None).eval.outcome,
        Outcome::Allow(_)
    ));
}

#[test]
fn the_clock_is_injected() {
    let token = testkit::rs256(cognito("order/post.order"));
    let p = policy_from(&config());
    assert!(matches!(
        run_with(&p, post(&token), NOW + 3600 + 59, None)
            .eval
            .outcome,
        Outcome::Allow(_)
    ));
    assert_denied(
        &run_with(&p, post(&token), NOW + 3600 + 60, None),
        DenyReason::Expired,
        401,
    );
}

#[test]
fn issuer_audience_token_use_and_claims() {
    let mut c = cognito("order/post.order");
    c["iss"] = json!("https://evil.example.com");
    assert_denied(&run(post(&testkit::rs256(c))), DenyReason::Issuer, 401);

    // Cognito access tokens have no aud: client_id stands in for it.
    let mut c = cognito("order/post.order");
    c["client_id"] = json!("someone-else");
    let r = run(post(&testkit::rs256(c)));
    assert_denied(&r, DenyReason::Audience, 401);

    let mut c = cognito("order/post.order");
    c["aud"] = json!([CLIENT]);
    assert!(matches!(
        run(post(&testkit::rs256(c))).eval.outcome,
        Outcome::Allow(_)
    ));
    let mut c = cognito("order/post.order");
    c["aud"] = json!("other");
    assert_denied(&run(post(&testkit::rs256(c))), DenyReason::Audience, 401);

    let mut c = cognito("order/post.order");
    c["token_use"] = json!("id");
    assert_denied(&run(post(&testkit::rs256(c))), DenyReason::TokenUse, 401);

    // The provider's required claim: absent is 401 invalid_token.
    let mut c = cognito("order/post.order");
    c.as_object_mut().unwrap().remove("client_id");
    c["aud"] = json!(CLIENT);
    let r = run(post(&testkit::rs256(c)));
    assert_denied(&r, DenyReason::Claim, 401);
    assert_eq!(denied(&r).description, "missing required claim client_id");
}

#[test]
fn scopes_any_and_all() {
    let get = |scope: &str| {
        RecordedRequest::new("GET", "/api/v1/order/7").bearer(&testkit::rs256(cognito(scope)))
    };
    let r = run(get("order/post.order"));
    assert_denied(&r, DenyReason::Scope, 403);
    let Plan::Respond(resp) = &r.plan else {
        panic!()
    };
    assert!(
        resp.header("www-authenticate")
            .unwrap()
            .ends_with("scope=\"order/get.order order/admin\"")
    );
    assert!(matches!(
        run(get("order/admin")).eval.outcome,
        Outcome::Allow(_)
    ));
    assert!(matches!(
        run(get("x order/get.order")).eval.outcome,
        Outcome::Allow(_)
    ));

    let admin = |scope: &str| {
        RecordedRequest::get("/admin/users")
            .with_route("admin_route")
            .bearer(&testkit::rs256(cognito(scope)))
    };
    assert_denied(&run(admin("order/admin")), DenyReason::Scope, 403);
    assert!(matches!(
        run(admin("order/audit order/admin")).eval.outcome,
        Outcome::Allow(_)
    ));
}

#[test]
fn scp_arrays_count_as_scopes() {
    let mut c = cognito("");
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["order/post.order"]);
    assert!(matches!(
        run(post(&testkit::rs256(c))).eval.outcome,
        Outcome::Allow(_)
    ));
}

#[test]
fn rule_claims_are_authorization_403() {
    let mut c = cognito("");
    c["tenant"] = json!("t2");
    let r = run(RecordedRequest::get("/tenant/x").bearer(&testkit::rs256(c.clone())));
    assert_denied(&r, DenyReason::Claim, 403);
    c["tenant"] = json!("t1");
    assert!(matches!(
        run(RecordedRequest::get("/tenant/x").bearer(&testkit::rs256(c)))
            .eval
            .outcome,
        Outcome::Allow(_)
    ));
}

#[test]
fn anonymous_routes_ignore_tokens_but_still_drop_spoofed_headers() {
    let r = run(RecordedRequest::get("/healthz?probe=1")
        .bearer("garbage")
        .with_header("x-client-id", b"spoofed"));
    let e = edits(&r);
    assert!(e.set.is_empty());
    assert!(e.remove.contains(&"x-client-id".to_string()));
}

#[test]
fn unmatched_requests() {
    let r = run(RecordedRequest::get("/elsewhere").bearer(&testkit::rs256(cognito("order/admin"))));
    assert_denied(&r, DenyReason::Unmatched, 403);
    assert_eq!(r.eval.rule, None);
    let open = policy_from(&with(config(), |c| {
        c.insert("unmatched".into(), json!("allow"));
    }));
    let r = run_with(&open, RecordedRequest::get("/elsewhere"), NOW, None);
    assert!(matches!(r.eval.outcome, Outcome::Allow(_)));
}

#[test]
fn path_tricks_do_not_reach_anonymous_rules() {
    // /healthz/../api/v1/order is the order API, not the health check.
    let r = run(RecordedRequest::new("POST", "/healthz/../api/v1/order"));
    assert_denied(&r, DenyReason::Missing, 401);
    let r = run(RecordedRequest::new("POST", "/api//v1/./order"));
    assert_eq!(r.eval.rule, Some(1));
}

#[test]
fn the_upstream_gets_the_path_that_was_decided_on() {
    // RFC 3986 dot segments: the empty segments are removed one by one, so
    // this is order 42's `healthz`, which no anonymous rule covers.
    let r = run(RecordedRequest::new(
        "DELETE",
        "/api/v1/order/42/////../../../../healthz",
    ));
    assert_denied(&r, DenyReason::Unmatched, 403);
    // An allowed request whose path was not normal is forwarded with the
    // normal path and its query.
    let token = testkit::rs256(cognito("order/post.order"));
    let r = run(RecordedRequest::new("POST", "/x/../api//v1/order?a=/../b").bearer(&token));
    assert_eq!(edits(&r).get(":path"), Some(&b"/api/v1/order?a=/../b"[..]));
    let r = run(RecordedRequest::get("//healthz"));
    assert_eq!(edits(&r).get(":path"), Some(&b"/healthz"[..]));
    // ...together with the removal of a token sent as a query parameter.
    let p = policy_from(&with(config(), |c| {
        c["providers"]["cognito"]["forward_token"] = json!(false);
    }));
    let r = run_with(
        &p,
        RecordedRequest::new("POST", &format!("/api/./v1/order?access_token={token}&a=1")),
        NOW,
        None,
    );
    assert_eq!(edits(&r).get(":path"), Some(&b"/api/v1/order?a=1"[..]));
    // A normal path is left alone.
    let r = run(RecordedRequest::get("/healthz?probe=1"));
    assert_eq!(edits(&r).get(":path"), None);
}

#[test]
fn ambiguous_paths_are_refused() {
    for path in [
        "/healthz/..%2Fapi/v1/order",
        "/healthz/..%5Capi",
        "/healthz\\..\\api",
        "/healthz/..;/api/v1/order",
        "/healthz;/../api",
        "/a%",
    ] {
        let r = run(RecordedRequest::get(path));
        assert_denied(&r, DenyReason::Path, 400);
        assert_eq!(r.eval.rule, None, "{path}");
    }
    // Refusing instead of rewriting.
    let p = policy_from(&with(config(), |c| {
        c.insert("path_normalization".into(), json!({"non_normal": "reject"}));
    }));
    let r = run_with(&p, RecordedRequest::get("//healthz"), NOW, None);
    assert_denied(&r, DenyReason::Path, 400);
    let r = run_with(&p, RecordedRequest::get("/healthz"), NOW, None);
    assert!(matches!(r.eval.outcome, Outcome::Allow(_)));
    // Allowed as opaque bytes: `..;` is no dot segment.
    let p = policy_from(&with(config(), |c| {
        c.insert("path_normalization".into(), json!({"ambiguous": "allow"}));
    }));
    let r = run_with(&p, RecordedRequest::get("/healthz/..;/api"), NOW, None);
    assert_denied(&r, DenyReason::Unmatched, 403);
}

#[test]
fn algorithm_attacks() {
    let c = cognito("order/post.order");
    for alg in ["none", "None", "NONE", "nOnE"] {
        let t = format!(
            "{}.{}.",
            crate::b64::encode(json!({"alg": alg, "kid": "rsa-1"}).to_string().as_bytes()),
            crate::b64::encode(c.to_string().as_bytes())
        );
        let r = run(post(&t));
        let d = denied(&r);
        assert_eq!(d.status, 401, "{alg}");
        assert!(
            matches!(d.reason, DenyReason::Algorithm | DenyReason::Malformed),
            "{alg}: {d:?}"
        );
        let t = format!("{t}c2ln");
        assert_denied(&run(post(&t)), DenyReason::Algorithm, 401);
    }

    // HS256 "signed" with the RSA public key: HS256 is not allowed at all.
    let der = testkit::keys().rsa.public_key().to_der().unwrap();
    let t = testkit::hs256_raw(json!({"alg": "HS256", "kid": "rsa-1"}), c.clone(), &der);
    assert_denied(&run(post(&t)), DenyReason::Algorithm, 401);

    // An EC key named by an RS256 header.
    let t = testkit::unsigned(json!({"alg": "RS256", "kid": "ec-1"}), c.clone());
    assert_denied(&run(post(&t)), DenyReason::Algorithm, 401);

    // RS384 is not in the provider's list.
    let t = testkit::unsigned(json!({"alg": "RS384", "kid": "rsa-1"}), c);
    assert_denied(&run(post(&t)), DenyReason::Algorithm, 401);
}

#[test]
fn keys_and_signatures() {
    let c = cognito("order/post.order");
    let t = testkit::unsigned(json!({"alg": "RS256", "kid": "nope"}), c.clone());
    assert_denied(&run(post(&t)), DenyReason::UnknownKid, 401);

    // Same kid, different key: the signature does not verify.
    let forged = testkit::rs256_other(c.clone());
    assert_denied(&run(post(&forged)), DenyReason::Signature, 401);

    // A tampered payload.
    let good = testkit::rs256(c.clone());
    let parts: Vec<&str> = good.split('.').collect();
    let mut evil = c;
    evil["scope"] = json!("order/admin order/post.order");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        crate::b64::encode(evil.to_string().as_bytes()),
        parts[2]
    );
    assert_denied(&run(post(&tampered)), DenyReason::Signature, 401);

    // Truncated signature: wrong length for the modulus.
    let truncated = &good[..good.len() - 10];
    assert_denied(&run(post(truncated)), DenyReason::Signature, 401);
}

#[test]
fn garbage_and_several_tokens() {
    for t in ["garbage", "a.b", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9"] {
        assert_denied(&run(post(t)), DenyReason::Malformed, 401);
    }
    let good = testkit::rs256(cognito("order/post.order"));
    let r = run(post(&good).with_header("cookie", format!("session_token={good}").as_bytes()));
    assert_denied(&r, DenyReason::Malformed, 401);
    assert_eq!(denied(&r).code, ErrorCode::InvalidRequest);
    let r = run(RecordedRequest::new("POST", "/api/v1/order").with_header(
        "authorization",
        format!("Bearer {good},Bearer {good}").as_bytes(),
    ));
    assert_eq!(denied(&r).code, ErrorCode::InvalidRequest);
    let r = run(RecordedRequest::new("POST", "/api/v1/order")
        .with_header("authorization", b"Bearer \xff\xfe"));
    assert_denied(&r, DenyReason::Malformed, 401);
}

#[test]
fn tokens_from_params_and_cookies_and_stripping() {
    let good = testkit::rs256(cognito("order/post.order"));
    let no_forward = policy_from(&with(config(), |c| {
        c["providers"]["cognito"]["forward_token"] = json!(false);
    }));
    let r = run_with(
        &no_forward,
        RecordedRequest::new("POST", &format!("/api/v1/order?a=1&access_token={good}")),
        NOW,
        None,
    );
    assert_eq!(edits(&r).get(":path"), Some(&b"/api/v1/order?a=1"[..]));

    let r = run_with(
        &no_forward,
        RecordedRequest::new("POST", "/api/v1/order")
            .with_header("cookie", format!("x=1; session_token={good}").as_bytes()),
        NOW,
        None,
    );
    assert_eq!(edits(&r).get("cookie"), Some(&b"x=1"[..]));

    let r = run_with(&no_forward, post(&good), NOW, None);
    assert!(edits(&r).remove.contains(&"authorization".to_string()));

    // Forwarded by default.
    let r = run(post(&good));
    assert!(!edits(&r).remove.contains(&"authorization".to_string()));
}

#[test]
fn report_mode_lets_denials_through_with_a_header() {
    let report = policy_from(&with(config(), |c| {
        c.insert("mode".into(), json!("report"));
    }));
    let r = run_with(
        &report,
        RecordedRequest::new("POST", "/api/v1/order"),
        NOW,
        None,
    );
    assert!(
        matches!(r.eval.outcome, Outcome::Deny(_)),
        "still decided as a denial"
    );
    let e = edits(&r);
    assert_eq!(
        e.get("x-jwt-policy-decision"),
        Some(&b"deny; reason=missing; status=401"[..])
    );
    let forged = RecordedRequest::new("POST", "/api/v1/order")
        .with_header("x_jwt_policy_decision", b"allow")
        .with_header("x-jwt-policy-decision", b"allow");
    let head = forged.head();
    let r2 = run_with(&report, forged, NOW, None);
    assert_eq!(
        edits(&r2)
            .apply(&head)
            .iter()
            .filter(|(n, _)| n.contains(&b'j'))
            .collect::<Vec<_>>(),
        [(
            &b"x-jwt-policy-decision"[..],
            &b"deny; reason=missing; status=401"[..]
        )],
        "clients cannot forge it"
    );
    let r = run_with(
        &report,
        post(&testkit::rs256(cognito("order/post.order"))),
        NOW,
        None,
    );
    assert_eq!(edits(&r).get("x-jwt-policy-decision"), Some(&b"allow"[..]));

    // Per rule: only rule 2 reports.
    let mixed = policy_from(&with(config(), |c| {
        c["rules"][2]["mode"] = json!("report");
    }));
    let get = RecordedRequest::new("GET", "/api/v1/order")
        .bearer(&testkit::rs256(cognito("order/post.order")));
    let r = run_with(&mixed, get, NOW, None);
    assert_eq!(
        edits(&r).get("x-jwt-policy-decision"),
        Some(&b"deny; reason=scope; status=403"[..])
    );
    assert_denied(
        &run_with(
            &mixed,
            RecordedRequest::new("POST", "/api/v1/order"),
            NOW,
            None,
        ),
        DenyReason::Missing,
        401,
    );
}

#[test]
fn hmac_with_an_explicit_secret() {
    let secret = [9u8; 32];
    let p = policy_from(&json!({
        "providers": {"h": {"issuer": ISSUER, "algorithms": ["HS256"],
                             "shared_secret_base64": crate::b64::encode(&secret)}},
        "rules": [{"match": {}, "requires": {}}]
    }));
    let good = testkit::hs256_raw(json!({"alg": "HS256"}), cognito(""), &secret);
    let r = run_with(&p, RecordedRequest::get("/").bearer(&good), NOW, None);
    assert!(
        matches!(r.eval.outcome, Outcome::Allow(_)),
        "{:?}",
        r.eval.outcome
    );
    let bad = testkit::hs256_raw(json!({"alg": "HS256"}), cognito(""), &[8u8; 32]);
    assert_denied(
        &run_with(&p, RecordedRequest::get("/").bearer(&bad), NOW, None),
        DenyReason::Signature,
        401,
    );
}

#[test]
fn cache_hits_still_check_time_and_route() {
    let p = policy_from(&config());
    let mut cache = TokenCache::new(CacheSettings::default());
    let token = testkit::rs256(cognito("order/post.order"));
    let r = run_with(&p, post(&token), NOW, Some(&mut cache));
    assert_eq!(r.eval.cache, CacheUse::Miss);
    assert!(matches!(r.eval.outcome, Outcome::Allow(_)));
    let r = run_with(&p, post(&token), NOW + 1, Some(&mut cache));
    assert_eq!(r.eval.cache, CacheUse::Hit);
    assert_eq!(edits(&r).get("x-client-id"), Some(CLIENT.as_bytes()));
    assert_eq!(r.eval.kid.as_deref(), Some("rsa-1"));
    // Same token, other route: scopes are checked per request.
    let get = RecordedRequest::new("GET", "/api/v1/order").bearer(&token);
    let r = run_with(&p, get, NOW + 2, Some(&mut cache));
    assert_eq!(r.eval.cache, CacheUse::Hit);
    assert_denied(&r, DenyReason::Scope, 403);
    // Time is checked on hits: the entry expires with the token.
    let r = run_with(&p, post(&token), NOW + 3600 + 60, Some(&mut cache));
    assert!(matches!(r.eval.outcome, Outcome::Deny(_)));
    // Tokens that fail are not cached.
    let bad = testkit::unsigned(
        json!({"alg": "RS256", "kid": "rsa-1"}),
        cognito("order/post.order"),
    );
    run_with(&p, post(&bad), NOW, Some(&mut cache));
    let r = run_with(&p, post(&bad), NOW, Some(&mut cache));
    assert_eq!(r.eval.cache, CacheUse::Miss);
}

/// A token the cache holds is taken as that entry's text without being
/// scanned again; the request still gets exactly the verdict a fresh scan
/// would give, whatever it adds around the cached bytes.
#[test]
fn a_cached_token_skips_the_scan_but_not_the_verdict() {
    let p = policy_from(&config());
    let mut cache = TokenCache::new(CacheSettings::default());
    let token = testkit::rs256(cognito("order/post.order"));
    assert_eq!(
        run_with(&p, post(&token), NOW, Some(&mut cache)).eval.cache,
        CacheUse::Miss
    );
    assert_eq!(
        run_with(&p, post(&token), NOW, Some(&mut cache)).eval.cache,
        CacheUse::Hit
    );
    // The cached token joined with another (two Authorization lines, as
    // Envoy merges them) is two tokens, cached or not.
    let joined = |a: &str, b: &str| {
        RecordedRequest::new("POST", "/api/v1/order")
            .with_header("authorization", format!("Bearer {a},Bearer {b}").as_bytes())
    };
    for req in [
        joined(&token, &token),
        joined(&token, "x.y.z"),
        joined("x.y.z", &token),
    ] {
        let r = run_with(&p, req, NOW, Some(&mut cache));
        assert_eq!(denied(&r).code, ErrorCode::InvalidRequest);
    }
    // Non-ASCII after the cached bytes: unreadable, as without a cache.
    let mut tail = format!("Bearer {token}").into_bytes();
    tail.extend_from_slice(b"\xff");
    let r = run_with(
        &p,
        RecordedRequest::new("POST", "/api/v1/order").with_header("authorization", &tail),
        NOW,
        Some(&mut cache),
    );
    assert_denied(&r, DenyReason::Malformed, 401);
    // The cached token in a second place is still a second token.
    let r = run_with(
        &p,
        post(&token).with_header("cookie", format!("session_token={token}").as_bytes()),
        NOW,
        Some(&mut cache),
    );
    assert_eq!(denied(&r).code, ErrorCode::InvalidRequest);
    // And the entry is untouched by all of that.
    assert_eq!(
        run_with(&p, post(&token), NOW, Some(&mut cache)).eval.cache,
        CacheUse::Hit
    );
}

/// Keys as a remote JWKS would present them.
struct RemoteKeys<'k> {
    state: u8,
    keys: &'k crate::jwks::KeySet,
    version: u64,
    refetch_allowed: bool,
}

impl KeyStore for RemoteKeys<'_> {
    fn status(&mut self, _: ProviderId) -> KeyStatus<'_> {
        match self.state {
            0 => KeyStatus::Loading,
            1 => KeyStatus::Unavailable { retry_after_s: 7 },
            _ => KeyStatus::Ready {
                keys: self.keys,
                version: self.version,
            },
        }
    }

    fn request_refetch(&mut self, _: ProviderId) -> bool {
        self.refetch_allowed
    }
}

fn run_remote(
    store: &mut RemoteKeys<'_>,
    req: RecordedRequest,
    cache: Option<&mut TokenCache>,
) -> Evaluation {
    let p = policy_from(&config());
    let mut env = Env {
        keys: store,
        verifier: &NoAcceleration,
        cache,
        now: NOW,
    };
    let head = req.head();
    evaluate(&p, &mut env, &req.view(&head), &mut NoTrace)
}

#[test]
fn remote_key_states() {
    let p = policy_from(&config());
    let KeySource::Local(keys) = &p.providers[0].keys else {
        panic!()
    };
    let token = testkit::rs256(cognito("order/post.order"));
    let mut store = RemoteKeys {
        state: 0,
        keys,
        version: 3,
        refetch_allowed: false,
    };
    assert_eq!(
        run_remote(&mut store, post(&token), None).outcome,
        Outcome::Wait(Wait {
            provider: 0,
            newer_than: None
        })
    );
    store.state = 1;
    let Outcome::Deny(d) = run_remote(&mut store, post(&token), None).outcome else {
        panic!()
    };
    assert_eq!(
        (d.status, d.reason, d.retry_after_s),
        (503, DenyReason::JwksUnavailable, Some(7))
    );
    store.state = 2;
    assert!(matches!(
        run_remote(&mut store, post(&token), None).outcome,
        Outcome::Allow(_)
    ));

    let rotated = testkit::unsigned(
        json!({"alg": "RS256", "kid": "rsa-2"}),
        cognito("order/post.order"),
    );
    let Outcome::Deny(d) = run_remote(&mut store, post(&rotated), None).outcome else {
        panic!()
    };
    assert_eq!(d.reason, DenyReason::UnknownKid);
    store.refetch_allowed = true;
    assert_eq!(
        run_remote(&mut store, post(&rotated), None).outcome,
        Outcome::Wait(Wait {
            provider: 0,
            newer_than: Some(3)
        })
    );

    // A new key set version invalidates cached verifications.
    let mut cache = TokenCache::new(CacheSettings::default());
    store.refetch_allowed = false;
    assert_eq!(
        run_remote(&mut store, post(&token), Some(&mut cache)).cache,
        CacheUse::Miss
    );
    assert_eq!(
        run_remote(&mut store, post(&token), Some(&mut cache)).cache,
        CacheUse::Hit
    );
    store.version = 4;
    assert_eq!(
        run_remote(&mut store, post(&token), Some(&mut cache)).cache,
        CacheUse::Miss
    );
}

#[test]
fn traces_every_check_in_order() {
    let p = policy_from(&config());
    let mut steps = Steps::default();
    let req = RecordedRequest::new("GET", "/api/v1/order")
        .bearer(&testkit::rs256(cognito("order/post.order")));
    decide(&p, &req, NOW, None, &mut steps);
    let names: Vec<(&str, bool)> = steps.0.iter().map(|s| (s.check.name(), s.passed)).collect();
    assert_eq!(
        names,
        [
            ("rule", true),
            ("token", true),
            ("parse", true),
            ("alg", true),
            ("key", true),
            ("signature", true),
            ("exp", true),
            ("iss", true),
            ("aud", true),
            ("token_use", true),
            ("claim", true),
            ("scopes", false)
        ]
    );
}

#[test]
fn the_route_name_is_needed_only_by_route_rules() {
    // The host reads `xds.route_name` (a hostcall) only for such policies.
    assert!(policy_from(&config()).uses_route_names);
    let p = policy_from(&with(config(), |c| {
        c["rules"] = json!([
            { "match": { "path": "/healthz" }, "allow_anonymous": true },
            { "match": { "prefix": "/api" }, "requires": { "scopes": ["order/post.order"] } }
        ]);
    }));
    assert!(!p.uses_route_names);
    let eval = decide(
        &p,
        &post(&testkit::rs256(cognito("order/post.order"))),
        NOW,
        None,
        &mut NoTrace,
    );
    assert!(matches!(eval.outcome, Outcome::Allow(_)), "{eval:?}");
}

#[test]
fn mode_report_is_per_rule() {
    let p = policy_from(&with(config(), |c| {
        c["rules"][0]["mode"] = json!("report");
    }));
    assert_eq!(p.mode_for(Some(0)), Mode::Report);
    assert_eq!(p.mode_for(Some(1)), Mode::Enforce);
}

#[test]
fn log_lines_name_reason_provider_rule_and_kid_but_never_the_token() {
    let p = policy_from(&config());
    let mut c = cognito("order/post.order");
    c["exp"] = json!(NOW - 1000);
    let token = testkit::rs256(c);
    let r = run_with(&p, post(&token), NOW, None);
    let line = crate::plan::describe(&p, &r.eval);
    assert_eq!(
        line,
        "deny reason=expired status=401 provider=cognito rule=1 kid=rsa-1 description=\"token expired\""
    );
    assert!(!line.contains(&token[..20]));
}
