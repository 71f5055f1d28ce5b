//! The two signature paths (Envoy's BoringSSL through `verify_signature`,
//! and pure Rust inside the VM) decide every token of one corpus alike, and
//! the verified-token cache answers repeats without changing any decision.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use support::cases::{CLIENT, ISSUER, claims};
use support::{
    Alg, EchoServer, Envoy, EnvoyConfig, Request, TestKey, WAIT_TIMEOUT, b64url, b64url_decode,
    es_high_s, eventually, jwks, now, send,
};

struct Corpus {
    keys: Vec<(Alg, TestKey)>,
}

impl Corpus {
    fn new() -> Corpus {
        Corpus {
            keys: vec![
                (Alg::RS256, TestKey::rsa("rs256", 2048)),
                (Alg::RS384, TestKey::rsa("rs384", 3072)),
                (Alg::RS512, TestKey::rsa("rs512", 4096)),
                (Alg::PS256, TestKey::rsa("ps256", 2048)),
                (Alg::ES256, TestKey::ec_p256("es256")),
                (Alg::ES384, TestKey::ec_p384("es384")),
                (Alg::EdDSA, TestKey::ed25519("eddsa")),
            ],
        }
    }

    fn config(&self, host_crypto: bool, cache_entries: usize) -> Value {
        json!({
          "use_host_crypto": host_crypto,
          "token_cache": {"max_entries": cache_entries},
          "providers": {"cognito": {
            "issuer": ISSUER, "audiences": [CLIENT], "token_use": "access",
            "algorithms": ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"],
            "local_jwks": jwks(&self.keys.iter().map(|(_, k)| k.jwk()).collect::<Vec<_>>()),
            "claims_to_headers": [{"claim": "client_id", "header": "x-client-id"}]
          }},
          "rules": [
            {"match": {"prefix": "/api", "methods": ["POST"]}, "requires": {"scopes": ["order/post.order"]}},
            {"match": {"prefix": "/api", "methods": ["GET"]}, "requires": {"scopes": ["order/get.order"]}}
          ]
        })
    }

    /// Valid and invalid tokens of every algorithm.
    fn tokens(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let other_rsa = TestKey::rsa("other", 2048);
        for (alg, key) in &self.keys {
            let good = key.token(*alg, claims("order/post.order"));
            let p: Vec<&str> = good.split('.').collect();
            let sig = b64url_decode(p[2]);
            let with_sig = |s: &[u8]| format!("{}.{}.{}", p[0], p[1], b64url(s));
            out.push((format!("{alg:?} valid"), good.clone()));
            let mut flipped = sig.clone();
            flipped[sig.len() / 2] ^= 0x01;
            out.push((format!("{alg:?} one bit flipped"), with_sig(&flipped)));
            let mut last = sig.clone();
            *last.last_mut().unwrap() ^= 0x80;
            out.push((format!("{alg:?} last byte changed"), with_sig(&last)));
            out.push((format!("{alg:?} zeros"), with_sig(&vec![0u8; sig.len()])));
            out.push((format!("{alg:?} ones"), with_sig(&vec![0xffu8; sig.len()])));
            out.push((
                format!("{alg:?} truncated"),
                with_sig(&sig[..sig.len() - 1]),
            ));
            let mut c = claims("order/post.order");
            c["scope"] = json!("order/post.order order/get.order");
            let tampered = format!("{}.{}.{}", p[0], b64url(c.to_string()), p[2]);
            out.push((format!("{alg:?} tampered claims"), tampered));
            out.push((
                format!("{alg:?} expired"),
                key.token(*alg, {
                    let mut c = claims("order/post.order");
                    c["exp"] = json!(now() - 3600);
                    c
                }),
            ));
            // Another key's signature under this key's kid.
            let forged = match alg {
                Alg::ES256 => TestKey::ec_p256(&key.kid),
                Alg::ES384 => TestKey::ec_p384(&key.kid),
                Alg::EdDSA => TestKey::ed25519(&key.kid),
                _ => TestKey {
                    kid: key.kid.clone(),
                    material: other_rsa.material.clone(),
                },
            };
            out.push((
                format!("{alg:?} other key, same kid"),
                forged.token(*alg, claims("order/post.order")),
            ));
            if matches!(alg, Alg::ES256 | Alg::ES384) {
                out.push((
                    format!("{alg:?} high-S twin"),
                    with_sig(&es_high_s(&sig, *alg)),
                ));
            }
        }
        out
    }
}

fn start(config: Value) -> (Envoy, EchoServer) {
    EnvoyConfig::new(config).start_with_echo()
}

fn decide(envoy: &Envoy, token: &str) -> (u16, String) {
    let resp = send(envoy.port(), &Request::post("/api/v1/order").bearer(token));
    (
        resp.status,
        resp.header("www-authenticate")
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn host_and_pure_rust_verifiers_agree_on_every_token() {
    let corpus = Corpus::new();
    let tokens = corpus.tokens();
    // Caches off: every request is verified.
    let (host, _u1) = start(corpus.config(true, 0));
    let (pure, _u2) = start(corpus.config(false, 0));
    let mut disagreements = Vec::new();
    let mut valid = 0;
    for (name, token) in &tokens {
        let a = decide(&host, token);
        let b = decide(&pure, token);
        if a != b {
            disagreements.push(format!("{name}: host {a:?} / pure {b:?}"));
        }
        if a.0 == 200 {
            valid += 1;
        }
    }
    assert!(
        disagreements.is_empty(),
        "the paths disagree:\n{}",
        disagreements.join("\n")
    );
    assert_eq!(
        valid,
        7 + 2,
        "one valid token per algorithm, plus the accepted high-S twins"
    );
    // Each path was really taken: RS*/ES* through the host in one Envoy,
    // nothing through the host in the other.
    // (Signatures of the wrong shape, e.g. truncated or ECDSA zeros, are
    // refused before any verifier; at least six per algorithm get there.)
    host.expect_decisions(tokens.len() as u64);
    let host_checks = host.filter_stat("verify.host");
    assert!(
        host_checks >= 5 * 6,
        "RS256/384/512 and ES256/384 went to the host: {host_checks}"
    );
    let host_pure = host.filter_stat("verify.pure");
    assert!(
        host_pure >= 2 * 6,
        "PS256 and EdDSA stay on pure Rust: {host_pure}"
    );
    // The same checks, all in pure Rust.
    pure.expect_filter_stat("verify.pure", host_checks + host_pure);
    pure.expect_filter_stat("verify.host", 0);
    host.assert_no_wasm_panic();
    pure.assert_no_wasm_panic();
}

#[test]
fn the_token_cache_answers_repeats_and_rechecks_time_and_route() {
    let corpus = Corpus::new();
    let (envoy, _u) = start(corpus.config(true, 1000));
    let (alg, key) = &corpus.keys[0];
    let token = key.token(*alg, claims("order/post.order"));
    for _ in 0..5 {
        assert_eq!(decide(&envoy, &token).0, 200);
    }
    envoy.expect_filter_stat("token_cache.miss", 1);
    envoy.expect_filter_stat("token_cache.hit", 4);
    let verified = || envoy.filter_stat("verify.host") + envoy.filter_stat("verify.pure");
    eventually("one verification", WAIT_TIMEOUT, || verified() == 1);
    // Route and scope rules still run per request on a hit.
    let get = send(envoy.port(), &Request::get("/api/v1/order").bearer(&token));
    assert_eq!(get.status, 403);
    envoy.expect_filter_stat("token_cache.hit", 5);
    // The cached claims still reach the upstream.
    let resp = send(envoy.port(), &Request::post("/api/v1/order").bearer(&token));
    assert_eq!(
        resp.upstream().header("x-client-id").as_deref(),
        Some(CLIENT)
    );

    envoy.assert_no_wasm_panic();
}

#[test]
fn a_cached_token_is_refused_once_it_expires() {
    let corpus = Corpus::new();
    let mut config = corpus.config(true, 1000);
    config["providers"]["cognito"]["clock_skew_s"] = json!(0);
    let (envoy, _u) = start(config);
    let (alg, key) = &corpus.keys[4];
    let mut c = claims("order/post.order");
    c["exp"] = json!(now() + 2);
    let token = key.token(*alg, c);
    assert_eq!(decide(&envoy, &token).0, 200);
    assert_eq!(decide(&envoy, &token).0, 200);
    envoy.expect_filter_stat("token_cache.hit", 1);
    thread::sleep(Duration::from_millis(3100));
    let (status, challenge) = decide(&envoy, &token);
    assert_eq!(status, 401, "expired while cached");
    assert!(challenge.contains("token expired"), "{challenge}");
    envoy.assert_no_wasm_panic();
}

#[test]
fn a_disabled_cache_verifies_every_request() {
    let corpus = Corpus::new();
    let (envoy, _u) = start(corpus.config(true, 0));
    let (alg, key) = &corpus.keys[0];
    let token = key.token(*alg, claims("order/post.order"));
    for _ in 0..3 {
        assert_eq!(decide(&envoy, &token).0, 200);
    }
    envoy.expect_filter_stat("verify.host", 3);
    envoy.expect_filter_stat("token_cache.hit", 0);
    envoy.expect_filter_stat("token_cache.miss", 0);
}
