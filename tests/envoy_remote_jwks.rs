//! Remote JWKS in a real Envoy: one shared, single-flight fetch for all
//! workers; requests wait for the first keys; outages keep the last good
//! keys; rotation refetches once; bad documents never replace good keys.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cases::{CLIENT, ISSUER, claims};
use support::{
    Alg, EchoServer, Envoy, EnvoyConfig, JwksMode, JwksServer, Request, TestKey, jwks, poll_until,
    send, send_and_abort,
};

const JWKS_URI: &str =
    "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot/.well-known/jwks.json";

struct Timing {
    timeout_ms: u64,
    cache_ttl_s: u64,
    max_stale_s: u64,
    refetch_cooldown_s: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            timeout_ms: 1000,
            cache_ttl_s: 3600,
            max_stale_s: 86400,
            refetch_cooldown_s: 2,
        }
    }
}

fn config(t: &Timing) -> Value {
    json!({
      "providers": {
        "cognito": {
          "issuer": ISSUER,
          "audiences": [CLIENT],
          "token_use": "access",
          "algorithms": ["RS256"],
          "remote_jwks": {
            "cluster": "jwks",
            "uri": JWKS_URI,
            "timeout_ms": t.timeout_ms,
            "cache_ttl_s": t.cache_ttl_s,
            "max_stale_s": t.max_stale_s,
            "refetch_cooldown_s": t.refetch_cooldown_s
          },
          "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }]
        }
      },
      "rules": [
        { "match": { "prefix": "/api" }, "requires": { "provider": "cognito", "scopes": ["order/post.order"] } }
      ]
    })
}

struct Setup {
    key: TestKey,
    jwks: JwksServer,
    upstream: EchoServer,
}

impl Setup {
    fn new() -> Setup {
        let key = TestKey::rsa("key-1", 2048);
        let jwks = JwksServer::start(jwks(&[key.jwk()]).to_string());
        Setup {
            key,
            jwks,
            upstream: EchoServer::start(),
        }
    }

    fn envoy(&self, t: &Timing, workers: u32) -> Envoy {
        EnvoyConfig::new(config(t))
            .upstream(self.upstream.port())
            .cluster("jwks", self.jwks.port())
            .concurrency(workers)
            .start()
    }

    fn token(&self) -> String {
        self.key.token(Alg::RS256, claims("order/post.order"))
    }
}

fn call(envoy: &Envoy, token: &str) -> support::Response {
    send(envoy.port(), &Request::post("/api/v1/order").bearer(token))
}

/// Polls `f` until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    poll_until(timeout, || f().then_some(())).is_some()
}

#[test]
fn four_workers_share_one_fetch_and_no_request_fails() {
    let s = Setup::new();
    let envoy = s.envoy(&Timing::default(), 4);
    let token = s.token();
    // 100 requests from 10 connections at once, starting right after Envoy
    // is ready: the first ones find no keys yet and must wait, not fail.
    let statuses: Vec<u16> = thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    (0..10)
                        .map(|_| call(&envoy, &token).status)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 100);
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
    assert_eq!(s.jwks.count(), 1, "one fetch for the whole process");
    envoy.expect_filter_stat("jwks.cognito.fetch_started", 1);
    envoy.expect_filter_stat("jwks.cognito.fetch_succeeded", 1);
    envoy.expect_filter_stat("jwks.cognito.keys", 1);
    envoy.expect_filter_stat("allowed", 100);
    // Every worker checked the token with the host verifier: keys a worker
    // first sees on a request are probed before that request is checked.
    envoy.wait_for_filter_stat("verify.host", |n| n >= 1);
    envoy.expect_filter_stat("verify.pure", 0);
    // Memory is visible: the largest VM's linear memory, set on each tick.
    assert!(eventually(Duration::from_secs(3), || envoy
        .filter_stat("vm_memory_bytes")
        >= 1 << 20));
    // The fetch went to the configured cluster with :authority and :path
    // taken from the URI.
    assert_eq!(
        s.jwks.paths(),
        ["/us-east-1_pO0zNXTot/.well-known/jwks.json"]
    );
    assert_eq!(s.jwks.hosts(), ["cognito-idp.us-east-1.amazonaws.com"]);
    assert!(
        envoy.wait_for_log(
            "JWKS for provider cognito fetched from",
            Duration::from_secs(2)
        ),
        "a log line per fetch outcome"
    );
    envoy.assert_no_wasm_panic();
}

#[test]
fn cold_start_with_the_idp_down_then_recovery() {
    let mut s = Setup::new();
    s.jwks.stop();
    let envoy = s.envoy(&Timing::default(), 2);
    let token = s.token();
    let started = Instant::now();
    let resp = call(&envoy, &token);
    assert_eq!(resp.status, 503, "{}", resp.body_str());
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "503 within about timeout_ms, took {:?}",
        started.elapsed()
    );
    assert!(resp.header("retry-after").is_some());
    assert!(
        resp.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=")
    );
    assert_eq!(resp.json()["error"], "temporarily_unavailable");
    // Never a hang: later requests are answered at once while keys are missing.
    let started = Instant::now();
    assert_eq!(call(&envoy, &token).status, 503);
    assert!(started.elapsed() < Duration::from_millis(1500));

    s.jwks.restart();
    let back = Instant::now();
    assert!(
        eventually(Duration::from_secs(8), || call(&envoy, &token).status
            == 200),
        "200 within a few seconds of the IdP coming back"
    );
    eprintln!(
        "recovered {:?} after the JWKS server came back",
        back.elapsed()
    );
    envoy.wait_for_filter_stat("jwks.cognito.fetch_failed", |n| n >= 1);
    envoy.wait_for_filter_stat("denied.jwks_unavailable", |n| n >= 2);
    envoy.assert_no_wasm_panic();
}

#[test]
fn a_slow_idp_answers_waiting_requests_with_503_after_the_timeout() {
    let s = Setup::new();
    s.jwks.set_mode(JwksMode::Slow {
        delay: Duration::from_secs(3),
        body: jwks(&[s.key.jwk()]).to_string(),
    });
    let envoy = s.envoy(&Timing::default(), 1);
    let token = s.token();
    // A client that gives up while its request waits is dropped cleanly.
    send_and_abort(
        envoy.port(),
        &Request::post("/api/v1/order").bearer(&token),
        Duration::from_millis(200),
    );
    let started = Instant::now();
    let resp = call(&envoy, &token);
    assert_eq!(resp.status, 503);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(2500),
        "answered within about timeout_ms (1 s): {waited:?}"
    );
    s.jwks
        .set_mode(JwksMode::Ok(jwks(&[s.key.jwk()]).to_string()));
    assert!(eventually(Duration::from_secs(8), || call(&envoy, &token)
        .status
        == 200));
    envoy.assert_no_wasm_panic();
}

/// A request waiting for keys stays held while its body arrives, and
/// the upstream never sees it: a forged token (right `kid`, wrong key) sent
/// with a body is refused once the keys come. With Envoy's default the host
/// holds the body back from a paused request; with
/// `allow_on_headers_stop_iteration` (Envoy 1.35+, for filters that read
/// bodies) the body reaches the filter, whose "continue" would release the
/// request undecided: it must answer "hold" while the request waits.
fn body_while_waiting(allow_on_headers_stop_iteration: bool) {
    let s = Setup::new();
    s.jwks.set_mode(JwksMode::Slow {
        delay: Duration::from_millis(1500),
        body: jwks(&[s.key.jwk()]).to_string(),
    });
    let t = Timing {
        timeout_ms: 10_000,
        ..Timing::default()
    };
    let mut config = EnvoyConfig::new(config(&t))
        .upstream(s.upstream.port())
        .cluster("jwks", s.jwks.port());
    if allow_on_headers_stop_iteration {
        let mut bootstrap: Value = serde_json::from_str(&config.bootstrap()).unwrap();
        let listener = &mut bootstrap["static_resources"]["listeners"][0];
        let hcm = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
        let wasm = &mut hcm["http_filters"][0]["typed_config"]["config"];
        assert_eq!(wasm["name"], "jwt_policy", "the filter's config: {wasm}");
        wasm["allow_on_headers_stop_iteration"] = json!(true);
        config = EnvoyConfig::raw(bootstrap.to_string());
    }
    let envoy = config.start();
    let forged = TestKey::rsa("key-1", 2048).token(Alg::RS256, claims("order/post.order"));
    let token = s.token();
    let post = |token: &str, body: &str| {
        send(
            envoy.port(),
            &Request::post("/api/v1/order")
                .bearer(token)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    // Both arrive while the keys are on their way, each with its body.
    let started = Instant::now();
    let (forged_resp, valid_resp) = thread::scope(|scope| {
        let forged = scope.spawn(|| post(&forged, r#"{"order": "forged"}"#));
        let valid = scope.spawn(|| post(&token, r#"{"order": "valid"}"#));
        (forged.join().unwrap(), valid.join().unwrap())
    });
    assert_eq!(forged_resp.status, 401, "{}", forged_resp.body_str());
    assert_eq!(valid_resp.status, 200, "{}", valid_resp.body_str());
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "answered after the keys came, not before: {:?}",
        started.elapsed()
    );
    // The upstream saw the valid one only, its body whole.
    let seen = s.upstream.requests();
    assert_eq!(seen.len(), 1, "the forged request reached the upstream");
    assert_eq!(seen[0].body, br#"{"order": "valid"}"#);
    envoy.assert_no_wasm_panic();
}

#[test]
fn a_request_body_does_not_release_a_request_waiting_for_keys() {
    body_while_waiting(false);
}

#[test]
fn nor_with_allow_on_headers_stop_iteration() {
    body_while_waiting(true);
}

#[test]
fn ttl_expiry_during_an_outage_keeps_serving_with_bounded_retries() {
    let s = Setup::new();
    let t = Timing {
        cache_ttl_s: 1,
        refetch_cooldown_s: 2,
        ..Timing::default()
    };
    let envoy = s.envoy(&t, 2);
    let token = s.token();
    assert_eq!(call(&envoy, &token).status, 200);
    s.jwks.set_mode(JwksMode::Status(500));
    s.jwks.reset_count();
    // Six seconds of outage, six TTLs: the cached keys keep serving.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        assert_eq!(
            call(&envoy, &token).status,
            200,
            "stale keys serve during the outage"
        );
        thread::sleep(Duration::from_millis(100));
    }
    // Retries back off (1 s, then 2 s: the cooldown) across all workers:
    // about 4 attempts in 6 s, never one per request or per worker.
    let attempts = s.jwks.count();
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} fetch attempts in 6 s"
    );
    // Every attempt is counted as failed; the retries go on meanwhile, so
    // one more may have reached the server by the time it is asked again.
    let failed = envoy.filter_stat("jwks.cognito.fetch_failed") as usize;
    let seen = s.jwks.count();
    assert!(
        failed >= attempts && (failed == seen || failed + 1 == seen),
        "fetch_failed {failed}, attempts seen by the server {attempts} then {seen}"
    );
    assert!(envoy.wait_for_log(
        "failed: HTTP status 500; keeping the previous keys",
        Duration::from_secs(2)
    ));
    envoy.assert_no_wasm_panic();
}

#[test]
fn stale_keys_stop_serving_after_max_stale() {
    let s = Setup::new();
    let t = Timing {
        cache_ttl_s: 1,
        max_stale_s: 1,
        refetch_cooldown_s: 1,
        ..Timing::default()
    };
    let envoy = s.envoy(&t, 1);
    let token = s.token();
    assert_eq!(call(&envoy, &token).status, 200);
    s.jwks.set_mode(JwksMode::Status(503));
    assert!(
        eventually(Duration::from_secs(5), || call(&envoy, &token).status
            == 503),
        "keys older than TTL + max_stale are not used"
    );
    envoy.assert_no_wasm_panic();
}

#[test]
fn rotation_refetches_once_and_unknown_kid_floods_are_bounded() {
    let s = Setup::new();
    let envoy = s.envoy(&Timing::default(), 2);
    assert_eq!(call(&envoy, &s.token()).status, 200);
    assert_eq!(s.jwks.count(), 1);

    // The IdP publishes a second key and signs with it.
    let new_key = TestKey::rsa("key-2", 2048);
    s.jwks.set_mode(JwksMode::Ok(
        jwks(&[s.key.jwk(), new_key.jwk()]).to_string(),
    ));
    thread::sleep(Duration::from_millis(2100)); // past the cooldown of the startup fetch
    let rotated = new_key.token(Alg::RS256, claims("order/post.order"));
    let resp = call(&envoy, &rotated);
    assert_eq!(
        resp.status,
        200,
        "a token signed by a newly published key passes: {}",
        resp.body_str()
    );
    assert_eq!(s.jwks.count(), 2, "after exactly one refetch");
    // Both keys now verify, with no more fetches.
    assert_eq!(call(&envoy, &s.token()).status, 200);
    assert_eq!(call(&envoy, &rotated).status, 200);
    assert_eq!(s.jwks.count(), 2);

    // A flood of random kids inside the cooldown costs no fetch...
    let forger = TestKey::rsa("unused", 2048);
    let flood = |n: usize, tag: &str| {
        for i in 0..n {
            let t = forger.mint(
                Alg::RS256,
                json!({"alg": "RS256", "kid": format!("{tag}-{i}")}),
                claims("order/post.order"),
            );
            let resp = call(&envoy, &t);
            assert_eq!(resp.status, 401, "unknown kid {tag}-{i}");
            assert!(
                resp.header("www-authenticate")
                    .unwrap()
                    .contains("invalid_token")
            );
        }
    };
    flood(30, "a");
    assert_eq!(s.jwks.count(), 2, "no fetch inside the cooldown");
    envoy.expect_filter_stat("jwks.cognito.unknown_kid_refetch", 1);
    envoy.expect_filter_stat("jwks.cognito.version", 2);
    // ...and once the cooldown is over, a whole flood costs one.
    thread::sleep(Duration::from_millis(2100));
    flood(30, "b");
    assert_eq!(
        s.jwks.count(),
        3,
        "one fetch per cooldown, whatever the flood"
    );
    envoy.wait_for_filter_stat("denied.unknown_kid", |n| n >= 60);
    envoy.assert_no_wasm_panic();
}

#[test]
fn malformed_and_oversized_documents_keep_the_previous_keys() {
    let s = Setup::new();
    let t = Timing {
        cache_ttl_s: 1,
        refetch_cooldown_s: 1,
        ..Timing::default()
    };
    let envoy = s.envoy(&t, 1);
    let token = s.token();
    assert_eq!(call(&envoy, &token).status, 200);
    let mut failures = envoy.filter_stat("jwks.cognito.fetch_failed");
    for (mode, why) in [
        (JwksMode::Malformed, "unusable JWKS"),
        (JwksMode::Oversize(300 * 1024), "over the limit"),
        (
            JwksMode::Ok(r#"{"keys":[{"kty":"RSA","kid":"x","n":"AQAB","e":"AQAB"}]}"#.into()),
            "no usable key",
        ),
        (JwksMode::Ok(r#"{"keys":[]}"#.into()), "no keys"),
        // Envoy answers a reset upstream connection with its own 503.
        (JwksMode::Reset, "failed: HTTP status 503"),
    ] {
        s.jwks.set_mode(mode.clone());
        assert!(
            eventually(Duration::from_secs(6), || envoy
                .filter_stat("jwks.cognito.fetch_failed")
                > failures),
            "{mode:?} counts a failed fetch"
        );
        failures = envoy.filter_stat("jwks.cognito.fetch_failed");
        assert!(
            envoy.wait_for_log(why, Duration::from_secs(2)),
            "the log says why ({why})"
        );
        assert_eq!(
            call(&envoy, &token).status,
            200,
            "{mode:?}: the previous keys keep serving"
        );
    }
    envoy.expect_filter_stat("jwks.cognito.version", 1); // bad documents never replaced the keys
    envoy.assert_no_wasm_panic();
}

#[test]
fn too_many_keys_is_a_failed_fetch() {
    let s = Setup::new();
    let many: Vec<Value> = (0..70)
        .map(|i| {
            let mut k = s.key.jwk();
            k["kid"] = json!(format!("k{i}"));
            k
        })
        .collect();
    s.jwks.set_mode(JwksMode::Ok(jwks(&many).to_string()));
    let envoy = s.envoy(&Timing::default(), 1);
    assert_eq!(call(&envoy, &s.token()).status, 503);
    assert!(eventually(Duration::from_secs(3), || envoy
        .log()
        .contains("more than the limit of 64")));
    envoy.assert_no_wasm_panic();
}
