//! The request the filter authorizes is exactly the request the upstream
//! gets, in a real Envoy: the path (under Envoy's defaults, Istio's, and the
//! shipped `envoy.yaml`), the route (route-name rules with header-matched
//! routes), the token (one per request, over HTTP/1.1 and HTTP/2), the
//! headers the filter owns (no underscore twin, no decision header from a
//! client), rule paths, and one verdict per token whichever verifier runs.
//!
//! Upstreams read requests as real software does: a Python WSGI server
//! (percent-decoded `PATH_INFO`, `posixpath.normpath`, `HTTP_X_CLIENT_ID`
//! for both `x-client-id` and `x_client_id`) and the WHATWG URL parser
//! (`new URL(req.url, base)` in Node), computed here with rust-url.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cases::{CLIENT, ISSUER, Keys, claims};
use support::tokens::cognito_access_claims;
use support::{
    Alg, EchoServer, EnvoyConfig, Hcm, JwksMode, JwksServer, Request, Response, TestKey,
    WsgiUpstream, WsgiView, jwks, now, refusal, send, send_h2,
};

fn provider(keys: &Keys) -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": [CLIENT],
        "token_use": "access",
        "algorithms": ["RS256"],
        "local_jwks": keys.jwks(),
        "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }]
    })
}

fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path `new URL(raw, "http://localhost")` gives (WHATWG), decoded.
fn whatwg_path(raw: &str) -> String {
    let base = url::Url::parse("http://localhost").unwrap();
    match base.join(raw) {
        Ok(u) => percent_decoded(u.path()),
        Err(_) => "(unparsable)".into(),
    }
}

/// Item 1: paths. Whatever Envoy's own path handling, a request reaches the
/// upstream only with a path every reader resolves to itself, and that
/// path is one the matching rule covers: no token ever reaches an order.
#[test]
fn the_upstream_gets_the_path_that_was_authorised() {
    let keys = Keys::generate();
    let config = json!({
        "providers": { "cognito": provider(&keys) },
        "rules": [
            { "match": { "path": "/healthz" }, "allow_anonymous": true },
            { "match": { "prefix": "/public/" }, "allow_anonymous": true },
            { "match": { "prefix": "/api/v1/order", "methods": ["GET"] },
              "requires": { "scopes": ["order/get.order"] } },
            { "match": { "prefix": "/api/v1/order", "methods": ["DELETE"] },
              "requires": { "scopes": ["order/admin"] } }
        ]
    });
    let attacks: &[(&str, &str)] = &[
        ("DELETE", "/api/v1/order/42/////../../../../healthz"),
        ("GET", "//public/api/v1/order/42"),
        ("GET", "/public/..;/api/v1/order/42"),
        ("GET", "/public/..;/..;/api/v1/order/42"),
        ("GET", "/healthz;/../api/v1/order/42"),
        ("GET", "/public/..%2F..%2Fapi/v1/order/42"),
        ("GET", "/public/..%2f..%2fapi/v1/order/42"),
        ("GET", "/public/..%5C..%5Capi/v1/order/42"),
        ("GET", "/public\\..\\..\\api/v1/order/42"),
        ("GET", "/healthz/../api/v1/order/42"),
        ("GET", "/public/%2e%2e/api/v1/order/42"),
        ("GET", "/public/%2E%2E/%2e%2E/api/v1/order/42"),
        ("DELETE", "/healthz/..//api/v1/order/42"),
        ("GET", "/public//..//..//api/v1/order/42"),
        ("GET", "/public/%00/../api/v1/order/42"),
        ("GET", "/public/x%3B/../../api/v1/order/42"),
    ];
    for (label, hcm) in [
        ("Envoy defaults", Hcm::envoy_defaults()),
        ("Istio defaults", Hcm::istio_defaults()),
        ("shipped envoy.yaml", Hcm::shipped()),
    ] {
        let upstream = WsgiUpstream::start();
        let envoy = EnvoyConfig::new(config.clone())
            .upstream(upstream.port())
            .hcm(hcm.clone())
            .start();
        let mut failures = Vec::new();
        for (method, path) in attacks {
            let r = send(envoy.port(), &Request::new(method, path));
            if r.status != 200 {
                // Refused: by the filter (400/401/403) or by Envoy itself
                // (400, or a redirect to the unescaped path).
                if !(300..=404).contains(&r.status) {
                    failures.push(format!("{method} {path}: status {}", r.status));
                }
                continue;
            }
            let Some(view) = WsgiView::from_body(&r.body) else {
                failures.push(format!("{method} {path}: 200 without the upstream's body"));
                continue;
            };
            let decoded = percent_decoded(&view.raw_path);
            let whatwg = whatwg_path(&view.raw_path);
            let anonymous = |p: &str| p == "/healthz" || p.starts_with("/public/");
            if view.served != decoded || whatwg != decoded || !anonymous(&decoded) {
                failures.push(format!(
                    "{method} {path} without a token reached the upstream as {:?}: \
                     WSGI serves {:?}, WHATWG reads {:?}",
                    view.raw_path, view.served, whatwg
                ));
            }
        }
        assert!(failures.is_empty(), "{label}:\n{}", failures.join("\n"));

        // Requests that are allowed get the normal path the rules saw.
        let token = keys.rsa.token(Alg::RS256, claims("order/get.order"));
        for (path, forwarded) in [
            ("/public/docs", "/public/docs"),
            ("//public//docs", "/public/docs"),
            ("/public/a/../docs?x=/../y", "/public/docs?x=/../y"),
            ("/%70ublic/docs", "/public/docs"),
        ] {
            let r = send(envoy.port(), &Request::get(path));
            assert_eq!(r.status, 200, "{label}: GET {path}: {}", r.body_str());
            let view = WsgiView::from_body(&r.body).unwrap();
            if hcm.normalize_path && hcm.merge_slashes {
                continue; // Envoy normalised it already.
            }
            assert_eq!(view.raw_path, forwarded, "{label}: GET {path}");
        }
        let r = send(
            envoy.port(),
            &Request::get("/api//v1/./order/7").bearer(&token),
        );
        assert_eq!(r.status, 200, "{label}");
        assert_eq!(
            WsgiView::from_body(&r.body).unwrap().raw_path,
            "/api/v1/order/7"
        );
        let r = send(
            envoy.port(),
            &Request::get("/public/..%2Fapi/v1/order/42").bearer(&token),
        );
        if hcm.escaped_slashes.is_none() {
            // Envoy passes it on; the filter refuses it, token or not.
            assert_eq!(r.status, 400, "{label}");
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.contains("error=\"invalid_request\""),
                "{challenge}"
            );
            envoy.wait_for_filter_stat("denied.path", |n| n > 0);
        }
        envoy.assert_no_wasm_panic();
    }
}

/// Item 1, `non_normal: reject`: a path that is not already normal is
/// answered 400 instead of being rewritten.
#[test]
fn non_normal_paths_can_be_refused_instead() {
    let keys = Keys::generate();
    let upstream = WsgiUpstream::start();
    let envoy = EnvoyConfig::new(json!({
        "providers": { "cognito": provider(&keys) },
        "rules": [{ "match": { "prefix": "/public/" }, "allow_anonymous": true }],
        "path_normalization": { "non_normal": "reject" }
    }))
    .upstream(upstream.port())
    .hcm(Hcm::envoy_defaults())
    .start();
    assert_eq!(send(envoy.port(), &Request::get("/public/a")).status, 200);
    for path in ["//public/a", "/public/./a", "/public/%61", "/x/../public/a"] {
        let r = send(envoy.port(), &Request::get(path));
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"], "invalid_request");
    }
}

/// Item 2: route-name rules are decided on the route Envoy forwards on.
/// Routes match on `x-client-id`, which the filter sets from the token and
/// strips when a client sends it.
#[test]
fn route_rules_follow_the_route_envoy_forwards_on() {
    let key = TestKey::rsa("rsa-1", 2048);
    let token = |client: &str, scope: &str| {
        key.token(
            Alg::RS256,
            cognito_access_claims(ISSUER, client, scope, now()),
        )
    };
    let default = EchoServer::start();
    let partner = EchoServer::start();
    let config = json!({
        "providers": { "cognito": {
            "issuer": ISSUER,
            "algorithms": ["RS256"],
            "local_jwks": jwks(&[key.jwk()]),
            "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }]
        }},
        "rules": [
            { "name": "partner", "match": { "route": "partner" },
              "requires": { "scopes": ["partner/read"] } },
            { "name": "open", "match": { "route": "open" }, "allow_anonymous": true },
            { "name": "orders", "match": { "route": "default_route" },
              "requires": { "scopes": ["order/get.order"] } }
        ],
        "route_check": true
    });
    let envoy = EnvoyConfig::new(config.clone())
        .upstream(default.port())
        .cluster("partner", partner.port())
        .header_route("partner", "x-client-id", "partner-app", "partner")
        .header_route("open", "x-client-id", "open-app", "upstream")
        .start();

    // A token of the partner app without the partner scope: decided under
    // `default_route` and allowed there, then Envoy re-routes it to the
    // partner route on the x-client-id the filter set. The second pass
    // decides again under `partner`: 403.
    let r = send(
        envoy.port(),
        &Request::get("/x").bearer(&token("partner-app", "order/get.order")),
    );
    assert_eq!(r.status, 403, "{}", r.body_str());
    assert!(
        r.header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"partner/read\""),
        "{:?}",
        r.headers
    );
    assert_eq!(partner.count(), 0, "nothing reached the partner upstream");

    // A forged x-client-id picks the anonymous rule of `open`; the filter
    // strips it, Envoy re-routes to `default_route`, whose rule wants a
    // token: 401.
    let r = send(
        envoy.port(),
        &Request::get("/x").header("x-client-id", "open-app"),
    );
    assert_eq!(r.status, 401, "{}", r.body_str());
    assert_eq!(default.count(), 0, "nothing reached the default upstream");

    // Claim-based routing that the policy allows on both routes: the
    // partner app with the partner scope lands on the partner upstream.
    let r = send(
        envoy.port(),
        &Request::get("/x").bearer(&token("partner-app", "partner/read")),
    );
    assert_eq!(
        r.status, 403,
        "the default route's rule wants order/get.order"
    );
    let r = send(
        envoy.port(),
        &Request::get("/x").bearer(&token("partner-app", "partner/read order/get.order")),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(partner.count(), 1);
    assert_eq!(
        r.upstream().header("x-client-id").as_deref(),
        Some("partner-app")
    );

    // No re-route: the second pass lets it through untouched.
    // (One worker, requests in order: once a count of a later request is
    // in /stats, every count of the earlier ones is.)
    envoy.expect_filter_stat("route_check.rerouted", 3);
    let allowed = envoy.filter_stat("provider.cognito.rule.orders.allowed");
    let r = send(
        envoy.port(),
        &Request::get("/x").bearer(&token("web-app", "order/get.order")),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.upstream().header("x-client-id").as_deref(),
        Some("web-app")
    );
    assert_eq!(default.count(), 1);
    envoy.wait_for_filter_stat("provider.cognito.rule.orders.allowed", |n| n > allowed);
    envoy.expect_filter_stat("route_check.rerouted", 3);
    envoy.assert_no_wasm_panic();

    // Without the second pass, route-name rules are refused at load.
    let mut unchecked = config;
    unchecked["route_check"] = json!(false);
    let err = EnvoyConfig::new(unchecked)
        .try_start()
        .err()
        .expect("Envoy refuses the configuration");
    assert!(
        refusal(&err).is_some_and(|r| r.starts_with("rules[0].match.route")),
        "{err}"
    );
}

fn several_tokens_config(keys: &Keys) -> Value {
    let mut p = provider(keys);
    p["from_headers"] = json!([
        { "name": "authorization", "prefix": "Bearer " },
        { "name": "x-jwt" }
    ]);
    p["from_cookies"] = json!(["session_token"]);
    json!({
        "providers": { "cognito": p },
        "rules": [{ "match": { "prefix": "/" }, "requires": { "scopes": ["order/get.order"] } }]
    })
}

/// Item 3: every value of a token location is read; two tokens are an
/// invalid request, over HTTP/1.1 and HTTP/2 alike.
#[test]
fn one_token_per_request_over_http1_and_http2() {
    let keys = Keys::generate();
    let (envoy, _upstream) = EnvoyConfig::new(several_tokens_config(&keys)).start_with_echo();
    let t = keys.rsa.token(Alg::RS256, claims("order/get.order"));
    let u = keys.rsa.token(Alg::RS256, claims("order/admin"));
    let cases: Vec<(&str, Request, u16)> = vec![
        ("x-jwt once", Request::get("/a").header("x-jwt", &t), 200),
        (
            "cookie once",
            Request::get("/a").header("cookie", format!("a=1; session_token={t}")),
            200,
        ),
        (
            "x-jwt twice",
            Request::get("/a").header("x-jwt", &t).header("x-jwt", &u),
            401,
        ),
        (
            "x-jwt and its x_jwt twin",
            Request::get("/a").header("x-jwt", &t).header("x_jwt", &u),
            401,
        ),
        (
            "two cookie lines",
            Request::get("/a")
                .header("cookie", format!("a=1; session_token={t}"))
                .header("cookie", format!("session_token={u}")),
            401,
        ),
        (
            "authorization twice",
            Request::get("/a").bearer(&t).bearer(&u),
            401,
        ),
    ];
    for (name, req, want) in &cases {
        for (proto, r) in [
            ("HTTP/1.1", send(envoy.port(), req)),
            ("HTTP/2", send_h2(envoy.port(), req)),
        ] {
            assert_eq!(r.status, *want, "{name} over {proto}: {}", r.body_str());
            if *want == 401 {
                let challenge = r.header("www-authenticate").unwrap_or_default();
                assert!(
                    challenge.contains("error=\"invalid_request\""),
                    "{name} over {proto}: {challenge}"
                );
            }
        }
    }
    envoy.assert_no_wasm_panic();
}

/// Items 4 and 5: no copy of a header the filter owns reaches the
/// upstream, whatever its case or `_` for `-`, on anonymous routes, in
/// report mode and next to a valid token; nor a client's decision header.
#[test]
fn managed_headers_cannot_be_spoofed() {
    let keys = Keys::generate();
    let config = json!({
        "providers": { "cognito": provider(&keys) },
        "rules": [
            { "match": { "path": "/healthz" }, "allow_anonymous": true },
            { "match": { "prefix": "/report" }, "requires": { "scopes": ["order/get.order"] },
              "mode": "report" },
            { "match": { "prefix": "/api" }, "requires": { "scopes": ["order/get.order"] } }
        ]
    });
    let upstream = WsgiUpstream::start();
    let envoy = EnvoyConfig::new(config.clone())
        .upstream(upstream.port())
        .hcm(Hcm::envoy_defaults())
        .start();
    let t = keys.rsa.token(Alg::RS256, claims("order/get.order"));
    let spoof = |req: Request| {
        req.header("x_client_id", "evil")
            .header("X_Client-ID", "evil2")
            .header("x_jwt_policy_decision", "allow")
            .header("x-jwt-policy-decision", "allow")
    };
    let view = |r: &Response| {
        assert_eq!(r.status, 200, "{}", r.body_str());
        WsgiView::from_body(&r.body).expect("the WSGI upstream answered")
    };
    let anonymous = view(&send(envoy.port(), &spoof(Request::get("/healthz"))));
    assert_eq!(
        anonymous.var("HTTP_X_CLIENT_ID"),
        None,
        "{:?}",
        anonymous.headers
    );
    assert_eq!(anonymous.var("HTTP_X_JWT_POLICY_DECISION"), None);
    let with_token = view(&send(
        envoy.port(),
        &spoof(Request::get("/api/x").bearer(&t)),
    ));
    assert_eq!(
        with_token.var("HTTP_X_CLIENT_ID"),
        Some(CLIENT),
        "{:?}",
        with_token.headers
    );
    assert_eq!(with_token.var("HTTP_X_JWT_POLICY_DECISION"), None);
    let report = view(&send(envoy.port(), &spoof(Request::get("/report"))));
    assert_eq!(report.var("HTTP_X_CLIENT_ID"), None, "{:?}", report.headers);
    assert_eq!(
        report.var("HTTP_X_JWT_POLICY_DECISION"),
        Some("deny; reason=missing; status=401")
    );
    envoy.assert_no_wasm_panic();
    drop(envoy);

    // The shipped setting: Envoy refuses any header with an underscore.
    let hcm = Hcm::shipped();
    assert_eq!(hcm.underscores.as_deref(), Some("REJECT_REQUEST"));
    let envoy = EnvoyConfig::new(config)
        .upstream(upstream.port())
        .hcm(hcm)
        .start();
    let r = send(
        envoy.port(),
        &Request::get("/healthz").header("x_client_id", "evil"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(send(envoy.port(), &Request::get("/healthz")).status, 200);
}

/// Item 6: rule paths are put in the same normal form as request paths;
/// one that no request can match is refused at load, naming the rule.
#[test]
fn rule_paths_match_as_written() {
    let keys = Keys::generate();
    let upstream = WsgiUpstream::start();
    let envoy = EnvoyConfig::new(json!({
        "providers": { "cognito": provider(&keys) },
        "rules": [
            { "match": { "prefix": "/%7Eadmin" }, "allow_anonymous": true },
            { "match": { "path": "/api/./internal" }, "allow_anonymous": true }
        ]
    }))
    .upstream(upstream.port())
    .hcm(Hcm::envoy_defaults())
    .start();
    for (path, forwarded) in [
        ("/~admin/x", "/~admin/x"),
        ("/%7eadmin/x", "/~admin/x"),
        ("/api/internal", "/api/internal"),
        ("/api/./internal", "/api/internal"),
    ] {
        let r = send(envoy.port(), &Request::get(path));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(WsgiView::from_body(&r.body).unwrap().raw_path, forwarded);
    }
    assert_eq!(
        send(envoy.port(), &Request::get("/api/internal2")).status,
        403
    );

    for prefix in ["/files%2fprivate", "/a/..;/b"] {
        let err = EnvoyConfig::new(json!({
            "providers": { "cognito": provider(&keys) },
            "rules": [{ "match": { "prefix": prefix }, "allow_anonymous": true }]
        }))
        .try_start()
        .err()
        .expect("refused");
        assert!(
            refusal(&err).is_some_and(|r| r.starts_with("rules[0].match.prefix: can never match")),
            "{err}"
        );
    }
}

/// Item 7: one verdict per token whichever verifier runs: a registered
/// header member of the wrong type is refused before either.
#[test]
fn host_and_pure_rust_verifiers_agree_on_odd_headers() {
    let keys = Keys::generate();
    let upstream = EchoServer::start();
    let good = keys.rsa.token(Alg::RS256, claims("order/get.order"));
    let odd = keys.rsa.mint(
        Alg::RS256,
        json!({"alg": "RS256", "kid": "rsa-1", "x5t": {"not": "a string"}}),
        claims("order/get.order"),
    );
    let mut answers = Vec::new();
    for host_crypto in [true, false] {
        let mut config = several_tokens_config(&keys);
        config["use_host_crypto"] = json!(host_crypto);
        let envoy = EnvoyConfig::new(config).upstream(upstream.port()).start();
        assert_eq!(
            send(envoy.port(), &Request::get("/a").bearer(&good)).status,
            200
        );
        let r = send(envoy.port(), &Request::get("/a").bearer(&odd));
        answers.push((r.status, r.header("www-authenticate").map(str::to_owned)));
        let verifier = if host_crypto { "host" } else { "pure" };
        envoy.wait_for_filter_stat(&format!("verify.{verifier}"), |n| n >= 1);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 401);
    assert!(
        answers[0]
            .1
            .as_deref()
            .unwrap_or_default()
            .contains("header x5t is not a string"),
        "{answers:?}"
    );
}

/// Item 8: an IdP that publishes `{"keys": []}` is a failed fetch of its
/// own kind: counted and logged at warning, and the last good keys serve.
#[test]
fn an_empty_jwks_keeps_the_last_keys_and_says_so() {
    let keys = Keys::generate();
    let jwks_server = JwksServer::start(jwks(&[keys.rsa.jwk()]).to_string());
    let upstream = EchoServer::start();
    let envoy = EnvoyConfig::new(json!({
        "providers": { "idp": {
            "issuer": ISSUER,
            "algorithms": ["RS256"],
            "remote_jwks": {
                "cluster": "jwks",
                "uri": format!("http://127.0.0.1:{}/jwks.json", jwks_server.port()),
                "refetch_cooldown_s": 1
            }
        }},
        "rules": [{ "match": { "prefix": "/" }, "requires": {} }]
    }))
    .upstream(upstream.port())
    .cluster("jwks", jwks_server.port())
    .start();
    let token = keys.rsa.token(Alg::RS256, claims("order/get.order"));
    assert_eq!(
        send(envoy.port(), &Request::get("/a").bearer(&token)).status,
        200
    );
    jwks_server.set_mode(JwksMode::Ok(r#"{"keys": []}"#.into()));
    // A token with an unknown kid makes the filter fetch again.
    let stranger = TestKey::rsa("rsa-new", 2048).token(Alg::RS256, claims("order/get.order"));
    assert_eq!(
        send(envoy.port(), &Request::get("/a").bearer(&stranger)).status,
        401
    );
    assert!(
        envoy.wait_for_log("JWKS fetch for provider idp from", Duration::from_secs(5)),
        "no fetch log"
    );
    assert!(
        envoy.wait_for_log(
            "failed: the JWKS holds no keys; keeping the previous keys",
            Duration::from_secs(5)
        ),
        "{}",
        envoy.log()
    );
    let log = envoy.log();
    let line = log
        .lines()
        .find(|l| l.contains("the JWKS holds no keys"))
        .unwrap();
    assert!(line.contains("[warning]"), "{line}");
    envoy.expect_filter_stat("jwks.idp.fetch_failed.empty", 1);
    envoy.expect_filter_stat("jwks.idp.fetch_failed", 1);
    assert_eq!(
        send(envoy.port(), &Request::get("/a").bearer(&token)).status,
        200
    );
    envoy.assert_no_wasm_panic();
}
