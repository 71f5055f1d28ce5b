//! One policy for a whole mesh (issue 12) in a real Envoy: every mesh case
//! (hosts, API Gateway path templates, two user pools on one rule, optional
//! tokens, CORS preflights), bootstrap keys through an IdP outage and a key
//! rotation, filter state, and a refused configuration that names every
//! problem it has. The rate-limit and claim-routing examples are in
//! `tests/envoy_examples.rs`.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::time::Duration;

use serde_json::json;
use support::cases::{self, CLIENT, ISSUER};
use support::mesh_cases::{self, MeshKeys};
use support::{
    Alg, EchoServer, EnvoyConfig, JwksMode, JwksServer, Request, TestKey, cognito_access_claims,
    eventually, jwks, now, send,
};

#[test]
fn mesh_policy_cases_in_envoy() {
    let keys = MeshKeys::generate();
    let (envoy, _upstream) = EnvoyConfig::new(mesh_cases::config(&keys)).start_with_echo();
    let all = mesh_cases::cases(&keys);
    let mut failures = Vec::new();
    for case in &all {
        let (_resp, failure) = cases::send_case(envoy.port(), case);
        failures.extend(failure);
    }
    cases::assert_no_failures(&failures, all.len());
    // The rule's counters name the pool that verified each token, and an
    // issuer of neither pool has a reason of its own.
    eventually("the request counters", Duration::from_secs(10), || {
        envoy.filter_stat("provider.partner_pool.rule.orders.allowed") == 1
            && envoy.filter_stat("provider.none.rule.orders.denied.unknown_issuer") == 1
            && envoy.filter_stat("denied.unknown_issuer") == 1
    });
    envoy.wait_for_filter_stat("provider.orders_pool.rule.orders.allowed", |n| n >= 4);
    envoy.assert_no_wasm_panic();
}

/// Item 6: `local_jwks` beside `remote_jwks` are bootstrap keys. Envoy
/// starts while the IdP is down: tokens of the bootstrap keys are served at
/// once (no 503), others refused; the IdP comes back with a rotated key:
/// after the fetch the new key is accepted and the old one, no longer
/// published, is not.
#[test]
fn bootstrap_keys_serve_through_an_idp_outage_until_fetched_keys_replace_them() {
    let pinned = TestKey::rsa("key-2025", 2048);
    let rotated = TestKey::rsa("key-2026", 2048);
    let idp = JwksServer::start(String::new());
    idp.set_mode(JwksMode::Status(503));
    let upstream = EchoServer::start();
    let config = json!({
        "providers": { "cognito": {
            "issuer": ISSUER,
            "audiences": [CLIENT],
            "algorithms": ["RS256"],
            "local_jwks": jwks(&[pinned.jwk()]),
            "remote_jwks": {
                "cluster": "jwks", "uri": format!("http://127.0.0.1:{}/jwks.json", idp.port()),
                "timeout_ms": 1000, "refetch_cooldown_s": 1
            },
            "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }]
        }},
        "rules": [{ "match": { "prefix": "/" }, "requires": {} }]
    });
    let envoy = EnvoyConfig::new(config)
        .cluster("jwks", idp.port())
        .upstream(upstream.port())
        .start();
    let get = |key: &TestKey| {
        let token = key.token(Alg::RS256, cognito_access_claims(ISSUER, CLIENT, "", now()));
        send(envoy.port(), &Request::get("/orders").bearer(&token))
    };

    // The IdP is down from the start: the pinned key serves at once.
    eventually("a failed fetch", Duration::from_secs(10), || {
        envoy.filter_stat("jwks.cognito.fetch_failed") >= 1
    });
    let r = get(&pinned);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.upstream().header("x-client-id").as_deref(), Some(CLIENT));
    // A key the bootstrap set lacks: a refetch is tried, fails, 401.
    let r = get(&rotated);
    assert_eq!(r.status, 401, "{}", r.body_str());
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    envoy.expect_filter_stat("jwks.cognito.fetch_succeeded", 0);

    // The IdP is back and has rotated: the fetched keys replace the pinned
    // ones (the retry back-off, or the next unknown kid, fetches them).
    idp.set_mode(JwksMode::Ok(jwks(&[rotated.jwk()]).to_string()));
    eventually("the rotated key accepted", Duration::from_secs(10), || {
        get(&rotated).status == 200
    });
    envoy.wait_for_filter_stat("jwks.cognito.fetch_succeeded", |n| n >= 1);
    envoy.expect_filter_stat("jwks.cognito.version", 1);
    let r = get(&pinned);
    assert_eq!(
        r.status,
        401,
        "the pinned key no longer serves: {}",
        r.body_str()
    );
    envoy.assert_no_wasm_panic();
}

/// Item 7 in the harness's own Envoy: what the filter publishes is what
/// another filter reads, for an allowed and a denied request (the access
/// log example is `tests/envoy_examples.rs`). A header-to-metadata filter
/// cannot read filter state, so the check is the access log itself.
#[test]
fn decisions_and_claims_are_filter_state_even_for_denials() {
    let keys = MeshKeys::generate();
    let upstream = EchoServer::start();
    let mut config = mesh_cases::config(&keys);
    config["decision_to_filter_state"] = json!(true);
    config["providers"]["orders_pool"]["claims_to_filter_state"] =
        json!([{ "claim": "client_id", "name": "client_id" }]);
    let envoy = EnvoyConfig::new(config)
        .upstream(upstream.port())
        .access_log(
            "%RESPONSE_CODE% %FILTER_STATE(wasm.jwt_policy.decision:PLAIN)% \
             %FILTER_STATE(wasm.jwt_policy.reason:PLAIN)% %FILTER_STATE(wasm.jwt_policy.rule:PLAIN)% \
             %FILTER_STATE(wasm.jwt_policy.provider:PLAIN)% %FILTER_STATE(wasm.jwt_policy.claim.client_id:PLAIN)%",
        )
        .start();
    let at = |path: &str| Request::get(path).header("host", "api.example.com");
    send(
        envoy.port(),
        &at("/orders/1").bearer(&keys.orders("orders/read")),
    );
    send(
        envoy.port(),
        &at("/orders/1").bearer(&keys.orders("orders/write")),
    );
    send(
        envoy.port(),
        &at("/orders/1").bearer(&keys.partners("orders/read")),
    );
    send(envoy.port(), &at("/orders/1"));
    send(envoy.port(), &at("/nowhere"));
    let want = [
        format!("200 allow - orders orders_pool {CLIENT}"),
        format!("403 deny scope orders orders_pool {CLIENT}"),
        // A partner token where only the orders pool reads: the partner
        // pool is named, and publishes no claims.
        "401 deny malformed orders partner_pool -".into(),
        // No token: the rule has two pools, neither was chosen.
        "401 deny missing orders - -".into(),
        "403 deny unmatched - - -".into(),
    ];
    eventually("five access log lines", Duration::from_secs(10), || {
        envoy.access_log().lines().count() == 5
    });
    let log = envoy.access_log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines, want.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Item 8: a refused configuration names every problem, each at its field,
/// in one Envoy log line.
#[test]
fn a_refused_configuration_names_every_problem_in_the_envoy_log() {
    let keys = cases::Keys::generate();
    let mut config = cases::config(&keys);
    config["providers"]["cognito"]["local_jwks"] = json!({ "keys": [] });
    config["rules"][2]["requires"]["provider"] = json!("okta");
    config["rules"][1]["match"]["hosts"] = json!(["*bad"]);
    let err = EnvoyConfig::new(config)
        .try_start()
        .err()
        .expect("Envoy must refuse the configuration");
    let line = err
        .lines()
        .find(|l| l.contains("configuration refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{err}"));
    for problem in [
        "3 problems",
        "providers.cognito.local_jwks.keys:",
        "rules[1].match.hosts[0]:",
        "rules[2].requires.provider: unknown provider \"okta\"",
    ] {
        assert!(line.contains(problem), "{problem} missing from: {line}");
    }
}
