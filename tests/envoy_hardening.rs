//! Hostile input in a real Envoy (RFC 8725 / OWASP JWT cases), the stats
//! and log line of every denial reason, and report-only mode.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use serde_json::{Value, json};
use support::cases::{self, CLIENT, ISSUER, Keys, claims};
use support::{
    Alg, EchoServer, Envoy, EnvoyConfig, JwksServer, Request, TestKey, WAIT_TIMEOUT, b64url,
    b64url_decode, es_high_s, eventually, now, send,
};

fn start(config: Value) -> (Envoy, EchoServer) {
    EnvoyConfig::new(config).start_with_echo()
}

fn post(token: &str) -> Request {
    Request::post("/api/v1/order").bearer(token)
}

fn parts(token: &str) -> (String, String, String) {
    let p: Vec<&str> = token.split('.').collect();
    (p[0].to_string(), p[1].to_string(), p[2].to_string())
}

/// The attack corpus: each case has a deliberate outcome, never a 5xx, and
/// the filter keeps serving valid requests.
#[test]
fn attack_corpus() {
    let keys = Keys::generate();
    let mut config = cases::config(&keys);
    // A second provider that wants one ECDSA encoding per token.
    config["providers"]["strict"] = config["providers"]["cognito"].clone();
    config["providers"]["strict"]["require_low_s"] = json!(true);
    config["rules"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"match": {"prefix": "/strict"}, "requires": {"provider": "strict", "scopes": ["order/post.order"]}}));
    let (envoy, _upstream) = start(config);
    // A server an attacker would like the filter to fetch keys from.
    let bait = JwksServer::start(support::jwks(&[TestKey::rsa("evil", 2048).jwk()]).to_string());
    let bait_url = format!("http://127.0.0.1:{}/jwks.json", bait.port());

    let scope = "order/post.order";
    let good = keys.rsa.token(Alg::RS256, claims(scope));
    let (h, p, s) = parts(&good);
    let attacker = TestKey::rsa("evil", 2048);
    let mut cases: Vec<(String, Request, u16)> = Vec::new();
    let mut add =
        |name: &str, req: Request, status: u16| cases.push((name.to_string(), req, status));

    // Header parameters that point at keys are never trusted or fetched.
    for (param, value) in [
        ("crit", json!(["urn:example:unknown-extension"])),
        ("jku", json!(bait_url)),
        ("x5u", json!(bait_url)),
        ("jwk", attacker.jwk()),
        (
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
    ] {
        let mut header = json!({"alg": "RS256", "kid": "evil"});
        header[param] = value.clone();
        add(
            &format!("{param} pointing at the attacker's key"),
            post(&attacker.mint(Alg::RS256, header.clone(), claims(scope))),
            401,
        );
        header["kid"] = json!("rsa-1");
        add(
            &format!("{param} on a genuinely signed token"),
            post(&keys.rsa.mint(Alg::RS256, header, claims(scope))),
            401,
        );
    }
    // Registered header members of the wrong type: refused before either
    // verifier runs, so Envoy's and the pure-Rust verifier agree.
    for (member, value) in [
        ("x5t", json!({"a": 1})),
        ("x5t", json!(5)),
        ("x5t#S256", json!(["a"])),
        ("cty", json!(7)),
        ("typ", json!(null)),
    ] {
        let mut header = json!({"alg": "RS256", "kid": "rsa-1"});
        header[member] = value.clone();
        add(
            &format!("header {member} = {value} on a genuinely signed token"),
            post(&keys.rsa.mint(Alg::RS256, header, claims(scope))),
            401,
        );
    }
    // kid values that look like paths or SQL: just unknown kids.
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1' --",
        "rsa-1\u{0}",
        "/dev/null",
        "%2e%2e%2f",
        "rsa-1' UNION SELECT",
    ] {
        add(
            &format!("kid {kid:?}"),
            post(&keys.rsa.mint(
                Alg::RS256,
                json!({"alg": "RS256", "kid": kid}),
                claims(scope),
            )),
            401,
        );
    }
    // Duplicate member names: the same token means different things to
    // different parsers.
    let payload = claims(scope).to_string();
    let dup_payload = payload.replacen('{', "{\"iss\":\"https://evil.example\",", 1);
    add(
        "duplicate iss in the payload",
        post(&keys.rsa.mint_raw(
            Alg::RS256,
            br#"{"alg":"RS256","kid":"rsa-1"}"#,
            dup_payload.as_bytes(),
        )),
        401,
    );
    add(
        "duplicate alg in the header",
        post(&keys.rsa.mint_raw(
            Alg::RS256,
            br#"{"alg":"none","alg":"RS256","kid":"rsa-1"}"#,
            payload.as_bytes(),
        )),
        401,
    );
    add(
        "duplicate kid in the header",
        post(&keys.rsa.mint_raw(
            Alg::RS256,
            br#"{"alg":"RS256","kid":"rsa-1","kid":"ec-1"}"#,
            payload.as_bytes(),
        )),
        401,
    );
    // Payloads that are not objects.
    for body in [
        &b"[]"[..],
        b"\"just a string\"",
        b"42",
        b"null",
        b"true",
        b"",
    ] {
        add(
            &format!("payload {:?}", String::from_utf8_lossy(body)),
            post(
                &keys
                    .rsa
                    .mint_raw(Alg::RS256, br#"{"alg":"RS256","kid":"rsa-1"}"#, body),
            ),
            401,
        );
    }
    // NumericDates (RFC 7519 §2): numbers, fractions included, rounded to
    // the stricter side; wrong types, negatives and values past 2^53 are
    // malformed.
    for (claim, value, status) in [
        ("exp", json!((now() + 600).to_string()), 401),
        ("exp", json!((now() + 600) as f64 + 0.5), 200),
        ("exp", json!(now() as f64 - 3600.5), 401),
        ("exp", json!(-1), 401),
        ("exp", json!(-0.5), 401),
        ("exp", json!(9007199254740993u64), 401),
        ("exp", json!(9007199254740992.0), 401),
        ("exp", json!(u64::MAX), 401),
        ("nbf", json!("0"), 401),
        ("nbf", json!(1.5), 200),
        ("nbf", json!(-100), 401),
        ("iat", json!("now"), 401),
        ("iat", json!(now() as f64 - 10.75), 200),
        ("iat", json!(-5), 401),
        ("iat", json!(1e300), 401),
    ] {
        let mut c = claims(scope);
        c[claim] = value.clone();
        add(
            &format!("{claim} = {value}"),
            post(&keys.rsa.token(Alg::RS256, c)),
            status,
        );
    }
    // Deeply nested JSON.
    let deep = format!(
        "{{\"iss\":\"{ISSUER}\",\"x\":{}1{}}}",
        "[".repeat(2000),
        "]".repeat(2000)
    );
    add(
        "deeply nested claims",
        post(&keys.rsa.mint_raw(
            Alg::RS256,
            br#"{"alg":"RS256","kid":"rsa-1"}"#,
            deep.as_bytes(),
        )),
        401,
    );
    let deep_header = format!(
        "{{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":{}0{}}}",
        "{\"a\":".repeat(40),
        "}".repeat(40)
    );
    add(
        "deeply nested header",
        post(
            &keys
                .rsa
                .mint_raw(Alg::RS256, deep_header.as_bytes(), payload.as_bytes()),
        ),
        401,
    );
    // Base64 variants that are not base64url.
    add(
        "padding on the signature",
        post(&format!("{h}.{p}.{s}==")),
        401,
    );
    add(
        "padding on the payload",
        post(&format!("{h}.{p}=.{s}")),
        401,
    );
    let std_alphabet = |seg: &str| seg.replace('-', "+").replace('_', "/");
    add(
        "standard alphabet",
        post(&format!(
            "{}.{}.{}",
            std_alphabet(&h),
            std_alphabet(&p),
            std_alphabet(&s)
        )),
        401,
    );
    add(
        "whitespace inside",
        post(&format!("{h}.{} {}.{s}", &p[..10], &p[10..])),
        401,
    );
    add(
        "newline inside",
        Request::post("/api/v1/order").header("authorization", format!("Bearer {h}.\t{p}.{s}")),
        401,
    );
    // Several tokens.
    add(
        "two Authorization headers",
        Request::post("/api/v1/order")
            .header("authorization", format!("Bearer {good}"))
            .header("authorization", format!("Bearer {good}")),
        401,
    );
    add(
        "token in header and query",
        Request::post(format!("/api/v1/order?access_token={good}")).bearer(&good),
        401,
    );
    add(
        "token in header and cookie",
        Request::post("/api/v1/order")
            .bearer(&good)
            .header("cookie", format!("session_token={good}")),
        401,
    );
    add(
        "token twice in the query",
        Request::post(format!(
            "/api/v1/order?access_token={good}&access_token={good}"
        )),
        401,
    );
    // ECDSA signatures.
    let es = keys.ec.token(Alg::ES256, claims(scope));
    let (eh, ep, es_sig) = parts(&es);
    let raw = b64url_decode(&es_sig);
    add(
        "ES256 all-zero signature",
        post(&format!("{eh}.{ep}.{}", b64url([0u8; 64]))),
        401,
    );
    add(
        "ES256 signature too short",
        post(&format!("{eh}.{ep}.{}", b64url(&raw[..63]))),
        401,
    );
    add(
        "ES256 signature too long",
        post(&format!(
            "{eh}.{ep}.{}",
            b64url([raw.as_slice(), &[0]].concat())
        )),
        401,
    );
    add(
        "ES256 signature as DER",
        post(&format!("{eh}.{ep}.{}", b64url(der(&raw)))),
        401,
    );
    let high = es_high_s(&raw, Alg::ES256);
    // The high-S twin verifies mathematically and carries the same claims
    // from the same signer; most signers do not normalise s, so refusing it
    // would refuse genuine tokens. Deliberate outcome: accepted by default,
    // refused where the provider sets require_low_s.
    add(
        "ES256 high-S twin (default: accepted)",
        post(&format!("{eh}.{ep}.{}", b64url(&high))),
        200,
    );
    add(
        "ES256 high-S twin with require_low_s",
        Request::post("/strict").bearer(&format!("{eh}.{ep}.{}", b64url(&high))),
        401,
    );
    add(
        "ES256 low-S with require_low_s",
        Request::post("/strict").bearer(&es),
        200,
    );
    // RSA signatures of the wrong size.
    let rsa_sig = b64url_decode(&s);
    add(
        "RSA signature one byte short",
        post(&format!("{h}.{p}.{}", b64url(&rsa_sig[1..]))),
        401,
    );
    add(
        "RSA signature one byte long",
        post(&format!(
            "{h}.{p}.{}",
            b64url([&[0u8][..], &rsa_sig].concat())
        )),
        401,
    );
    add(
        "RSA signature of 4096 bits",
        post(&format!("{h}.{p}.{}", b64url([0x42u8; 512]))),
        401,
    );
    add(
        "RSA signature of zeros",
        post(&format!("{h}.{p}.{}", b64url([0u8; 256]))),
        401,
    );
    // Size limits.
    let mut fat = claims(scope);
    fat["pad"] = json!("x".repeat(9000));
    add(
        "token over the length limit",
        post(&keys.rsa.token(Alg::RS256, fat)),
        401,
    );
    let big_header = format!(
        "{{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"pad\":\"{}\"}}",
        "y".repeat(1500)
    );
    add(
        "header over the size limit",
        post(
            &keys
                .rsa
                .mint_raw(Alg::RS256, big_header.as_bytes(), payload.as_bytes()),
        ),
        401,
    );

    let mut failures = Vec::new();
    for (name, req, want) in &cases {
        let resp = send(envoy.port(), req);
        if resp.status != *want {
            failures.push(format!(
                "{name}: status {} (wanted {want}); body {}",
                resp.status,
                resp.body_str()
            ));
        } else if *want == 401 {
            let challenge = resp.header("www-authenticate").unwrap_or("");
            if !challenge.starts_with("Bearer realm=\"api\"")
                || !challenge.contains("error=\"invalid_")
            {
                failures.push(format!("{name}: WWW-Authenticate {challenge:?}"));
            }
        }
        // The filter keeps serving valid requests between attacks.
        let ok = send(envoy.port(), &post(&good));
        if ok.status != 200 {
            failures.push(format!("after {name}: a valid request got {}", ok.status));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} attack cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        bait.count(),
        0,
        "keys are never fetched from URLs in tokens"
    );
    let refused = || {
        [
            "malformed",
            "signature",
            "unknown_kid",
            "algorithm",
            "expired",
        ]
        .iter()
        .map(|r| envoy.filter_stat(&format!("denied.{r}")))
        .sum::<u64>()
    };
    let want = cases.iter().filter(|c| c.2 == 401).count() as u64;
    eventually("every 401 counted", WAIT_TIMEOUT, || refused() == want);
    envoy.assert_no_wasm_panic();
}

/// `r || s` as a DER SEQUENCE, the form the JWS spec forbids.
fn der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let int = |x: &[u8]| {
        let mut v = vec![0u8];
        v.extend_from_slice(x);
        [&[0x02, v.len() as u8][..], &v].concat()
    };
    let body = [int(r), int(s)].concat();
    [&[0x30, body.len() as u8][..], &body].concat()
}

/// Every denial reason has its counter, overall and per provider and rule,
/// and one debug log line with reason, provider, rule and kid, never the
/// token.
#[test]
fn every_denial_reason_is_counted_and_logged() {
    let keys = Keys::generate();
    let mut config = cases::config(&keys);
    config["rules"][1]["name"] = json!("orders-post");
    config["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"match": {"prefix": "/tenant"}, "requires": {"provider": "cognito", "claims": [{"claim": "tenant", "one_of": ["t1"]}]}}));
    config["providers"]["remote"] = json!({
        "issuer": ISSUER, "audiences": [CLIENT],
        "remote_jwks": {"cluster": "nowhere", "uri": "https://idp.invalid/jwks.json", "timeout_ms": 500}
    });
    config["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"match": {"prefix": "/remote"}, "requires": {"provider": "remote"}}));
    let (envoy, _upstream) = start(config);
    let scope = "order/post.order";
    let rs = |c: Value| keys.rsa.token(Alg::RS256, c);
    let with = |k: &str, v: Value| {
        let mut c = claims(scope);
        c[k] = v;
        c
    };
    let token_secret = "eyJ-never-in-logs";
    let mut expired = claims(scope);
    expired["exp"] = json!(now() - 600);
    let expired_token = rs(expired);
    let requests: Vec<(&str, Request)> = vec![
        ("missing", Request::post("/api/v1/order")),
        ("malformed", post(&format!("{token_secret}.x.y"))),
        (
            "signature",
            post(&keys.forger.token(Alg::RS256, claims(scope))),
        ),
        (
            "unknown_kid",
            post(&keys.rsa.mint(
                Alg::RS256,
                json!({"alg": "RS256", "kid": "nope"}),
                claims(scope),
            )),
        ),
        (
            "algorithm",
            post(&keys.rsa.mint(
                Alg::RS512,
                json!({"alg": "RS512", "kid": "rsa-1"}),
                claims(scope),
            )),
        ),
        ("expired", post(&expired_token)),
        ("not_yet_valid", post(&rs(with("nbf", json!(now() + 600))))),
        (
            "issuer",
            post(&rs(with("iss", json!("https://evil.example")))),
        ),
        ("audience", post(&rs(with("aud", json!("other"))))),
        ("token_use", post(&rs(with("token_use", json!("id"))))),
        (
            "claim",
            Request::get("/tenant/a").bearer(&rs(with("tenant", json!("t2")))),
        ),
        (
            "scope",
            Request::get("/api/v1/order").bearer(&rs(claims(scope))),
        ),
        (
            "jwks_unavailable",
            Request::get("/remote").bearer(&rs(claims(scope))),
        ),
        ("unmatched", Request::get("/nowhere")),
    ];
    for (reason, req) in &requests {
        let resp = send(envoy.port(), req);
        assert!(
            [401, 403, 503].contains(&resp.status),
            "{reason}: {}",
            resp.status
        );
        assert!(resp.header("www-authenticate").is_some(), "{reason}");
    }
    assert_eq!(send(envoy.port(), &post(&rs(claims(scope)))).status, 200);
    assert!(envoy.wait_for_log("deny reason=unmatched", std::time::Duration::from_secs(2)));

    for (reason, _) in &requests {
        envoy.expect_filter_stat(&format!("denied.{reason}"), 1);
    }
    // Labelled by provider and rule (rule names default to their index).
    envoy.expect_filter_stat("provider.cognito.rule.orders-post.denied.missing", 1);
    envoy.expect_filter_stat("provider.cognito.rule.orders-post.denied.expired", 1);
    envoy.expect_filter_stat("provider.cognito.rule.2.denied.scope", 1);
    envoy.expect_filter_stat("provider.cognito.rule.4.denied.claim", 1);
    envoy.expect_filter_stat("provider.remote.rule.5.denied.jwks_unavailable", 1);
    envoy.expect_filter_stat("provider.cognito.rule.orders-post.allowed", 1);
    envoy.expect_filter_stat("allowed", 1);

    let log = envoy.log();
    for (reason, _) in &requests {
        assert!(
            log.contains(&format!("deny reason={reason} ")),
            "a debug line for {reason}"
        );
    }
    assert!(
        log.contains("deny reason=expired status=401 provider=cognito rule=orders-post kid=rsa-1"),
        "reason, provider, rule and kid"
    );
    assert!(!log.contains(token_secret), "never the token");
    assert!(
        !log.contains(&expired_token[expired_token.len() - 30..]),
        "never the token"
    );
    envoy.assert_no_wasm_panic();
}

/// Report-only mode decides as usual but lets the request through with the
/// decision for the upstream, and counts what would have been denied.
#[test]
fn report_mode_globally_and_per_rule() {
    let keys = Keys::generate();
    let scope = "order/post.order";
    let token = keys.rsa.token(Alg::RS256, claims(scope));
    let header = "x-jwt-policy-decision";

    // Per rule: only the GET rule reports.
    let mut config = cases::config(&keys);
    config["rules"][2]["mode"] = json!("report");
    let (envoy, _u) = start(config);
    let resp = send(
        envoy.port(),
        &Request::get("/api/v1/order")
            .bearer(&token)
            .header(header, "allow"),
    );
    assert_eq!(resp.status, 200, "a scope denial in report mode passes");
    assert_eq!(
        resp.upstream().header(header).as_deref(),
        Some("deny; reason=scope; status=403"),
        "the client's copy is replaced"
    );
    let resp = send(envoy.port(), &Request::get("/api/v1/order"));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.upstream().header(header).as_deref(),
        Some("deny; reason=missing; status=401")
    );
    let resp = send(
        envoy.port(),
        &Request::get("/api/v1/order")
            .bearer(&keys.rsa.token(Alg::RS256, claims("order/get.order"))),
    );
    assert_eq!(resp.upstream().header(header).as_deref(), Some("allow"));
    // The POST rule still enforces.
    assert_eq!(
        send(envoy.port(), &Request::post("/api/v1/order")).status,
        401
    );
    // A client cannot forge the decision on enforced routes either.
    let resp = send(envoy.port(), &post(&token).header(header, "allow"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.upstream().header(header), None);
    envoy.expect_filter_stat("report.would_deny.scope", 1);
    envoy.expect_filter_stat("report.would_deny.missing", 1);
    envoy.expect_filter_stat("provider.cognito.rule.2.would_deny.scope", 1);
    envoy.expect_filter_stat("denied.scope", 0); // not counted as a denial
    envoy.expect_filter_stat("denied.missing", 1); // the enforced POST
    drop(envoy);

    // Globally.
    let mut config = cases::config(&keys);
    config["mode"] = json!("report");
    let (envoy, _u) = start(config);
    let resp = send(envoy.port(), &Request::get("/nowhere"));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.upstream().header(header).as_deref(),
        Some("deny; reason=unmatched; status=403")
    );
    let resp = send(envoy.port(), &post("garbage"));
    assert_eq!(
        resp.upstream().header(header).as_deref(),
        Some("deny; reason=malformed; status=401")
    );
    envoy.expect_filter_stat("report.would_deny.unmatched", 1);
    envoy.expect_filter_stat("report.would_deny.malformed", 1);
    envoy.assert_no_wasm_panic();
}
