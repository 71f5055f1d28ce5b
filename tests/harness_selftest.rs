//! Proves the test harness itself works, without the wasm filter.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use support::{WAIT_TIMEOUT, eventually};

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use support::http::read_response;
use support::*;

#[test]
fn envoy_forwards_raw_bytes_to_the_echo_upstream() {
    let echo = EchoServer::start();
    let envoy = EnvoyConfig::without_filter().upstream(echo.port()).start();

    let resp = send(
        envoy.port(),
        &Request::get("/hello?x=1")
            .header("X-Custom", "abc")
            .header("x-bytes", b"caf\xe9 \xff!")
            .header("x-dup", "1")
            .header("x-dup", "2")
            .bearer("t0k3n"),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let up = resp.upstream();
    assert_eq!(
        (up.method.as_str(), up.path.as_str()),
        ("GET", "/hello?x=1")
    );
    assert_eq!(up.header("x-custom").as_deref(), Some("abc"));
    assert_eq!(
        up.header("x-bytes").as_deref(),
        Some("caf\u{fffd} \u{fffd}!")
    );
    assert_eq!(up.headers_named("x-dup"), ["1", "2"]);
    assert_eq!(up.header("authorization").as_deref(), Some("Bearer t0k3n"));

    // normalize_path + merge_slashes.
    let up = send(envoy.port(), &Request::get("//a/./b/../c")).upstream();
    assert_eq!(up.path, "/a/c");

    let resp = send(envoy.port(), &Request::post("/admin/x").body("hello"));
    assert_eq!(resp.upstream().method, "POST");
    let last = echo.requests().pop().unwrap();
    assert_eq!(
        (last.path.as_str(), last.body.as_slice()),
        ("/admin/x", &b"hello"[..])
    );
    assert_eq!(last.header("content-length"), Some("5"));
    assert_eq!(echo.count(), 3);

    eventually("downstream_rq_completed = 3", WAIT_TIMEOUT, || {
        envoy.stat("http.ingress.downstream_rq_completed") == 3
    });
    let stats = envoy.stats();
    assert_eq!(stats["cluster.upstream.upstream_rq_200"], 3);
    // One pooled keep-alive connection carried all three requests.
    assert_eq!(stats["cluster.upstream.upstream_cx_total"], 1);
    envoy.expect_stat("no.such.stat", 0);

    assert!(envoy.wait_for_log("starting main dispatch loop", Duration::from_secs(5)));
    assert!(!envoy.wait_for_log("no such line", Duration::from_millis(100)));
    envoy.assert_no_wasm_panic();
}

#[test]
fn two_envoys_run_side_by_side() {
    let (echo_a, echo_b) = (EchoServer::start(), EchoServer::start());
    let config = |port| {
        EnvoyConfig::without_filter()
            .upstream(port)
            .route("api_route", "/api")
            .cluster("jwks", 9)
            .concurrency(2)
    };
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| config(echo_a.port()).start());
        let b = config(echo_b.port()).start();
        (a.join().unwrap(), b)
    });
    assert_ne!(a.port(), b.port());
    assert_ne!(a.admin_port(), b.admin_port());

    for _ in 0..3 {
        assert_eq!(
            send(a.port(), &Request::get("/api/a")).upstream().path,
            "/api/a"
        );
    }
    assert_eq!(send(b.port(), &Request::get("/b")).upstream().path, "/b");
    assert_eq!((echo_a.count(), echo_b.count()), (3, 1));

    let dump = a.admin("GET", "/config_dump").body_str();
    for needle in ["api_route", "admin_route", "default_route", "\"jwks\""] {
        assert!(dump.contains(needle), "config_dump lacks {needle}");
    }

    // A client that gives up mid-request leaves Envoy healthy.
    send_and_abort(
        a.port(),
        &Request::post("/api/slow").body("x"),
        Duration::from_millis(50),
    );
    assert_eq!(send(a.port(), &Request::get("/api/after")).status, 200);
    a.assert_no_wasm_panic();
    b.assert_no_wasm_panic();
}

#[test]
fn configs_are_validated_and_rejected() {
    let dir = std::env::temp_dir().join(format!("jwt-policy-selftest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = EnvoyConfig::without_filter().upstream(8080).bootstrap();
    let broken = good.replace("\"STATIC\"", "\"NOT_A_TYPE\"");
    std::fs::write(dir.join("good.json"), &good).unwrap();
    std::fs::write(dir.join("broken.json"), &broken).unwrap();
    validate_config(dir.join("good.json")).unwrap();
    let err = validate_config(dir.join("broken.json")).unwrap_err();
    assert!(err.contains("NOT_A_TYPE"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let err = EnvoyConfig::raw(broken)
        .try_start()
        .err()
        .expect("broken bootstrap started");
    assert!(err.contains("NOT_A_TYPE"), "{err}");

    // A raw bootstrap following the conventions (admin + listener `main`) starts.
    let echo = EchoServer::start();
    let raw = EnvoyConfig::without_filter()
        .upstream(echo.port())
        .bootstrap();
    let envoy = EnvoyConfig::raw(raw).start();
    assert_eq!(send(envoy.port(), &Request::get("/raw")).status, 200);

    // The wasm filter block carries the plugin config as a JSON string.
    let plugin = json!({"providers": {"cognito": {"note": "quote \" and \\ survive"}}});
    let bootstrap: Value =
        serde_json::from_str(&EnvoyConfig::new(plugin.clone()).wasm("/x.wasm").bootstrap())
            .unwrap();
    let hcm = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
    let wasm = &hcm["typed_config"]["http_filters"][0]["typed_config"]["config"];
    assert_eq!(wasm["root_id"], "jwt_policy");
    assert_eq!(wasm["vm_config"]["code"]["local"]["filename"], "/x.wasm");
    let value = wasm["configuration"]["value"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(value).unwrap(), plugin);
    let raw = EnvoyConfig::with_raw_plugin_config("{not json")
        .wasm("/x.wasm")
        .bootstrap();
    assert!(raw.contains(r#""value":"{not json""#), "{raw}");
}

#[test]
fn jwks_server_modes() {
    let body = r#"{"keys":[]}"#.to_string();
    let mut jwks = JwksServer::start(body.clone());
    let port = jwks.port();
    let get = |path: &str| send(port, &Request::get(path));

    let resp = get("/.well-known/jwks.json");
    assert_eq!((resp.status, resp.body_str()), (200, body.clone()));
    assert_eq!(resp.header("content-type"), Some("application/json"));

    // Keep-alive: two requests on one connection.
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let keep_alive = Request::get("/ka")
        .header("connection", "keep-alive")
        .to_bytes();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for _ in 0..2 {
        conn.write_all(&keep_alive).unwrap();
        assert_eq!(read_response(&mut reader, false).unwrap().body_str(), body);
    }

    jwks.set_mode(JwksMode::Status(503));
    assert_eq!(get("/").status, 503);

    jwks.set_mode(JwksMode::Malformed);
    let resp = get("/");
    assert_eq!(resp.status, 200);
    assert!(serde_json::from_slice::<Value>(&resp.body).is_err());

    jwks.set_mode(JwksMode::Slow {
        delay: Duration::from_millis(300),
        body: body.clone(),
    });
    let started = Instant::now();
    assert_eq!(get("/").body_str(), body);
    assert!(started.elapsed() >= Duration::from_millis(300));

    jwks.set_mode(JwksMode::Reset);
    assert!(try_send(port, &Request::get("/")).is_err());

    jwks.set_mode(JwksMode::Oversize(100_000));
    let resp = get("/");
    assert_eq!(resp.body.len(), 100_000);
    assert_eq!(resp.json()["keys"], json!([]));

    assert_eq!(jwks.count(), 8);
    assert_eq!(jwks.paths()[0], "/.well-known/jwks.json");
    assert!(jwks.hosts().iter().all(|h| h == "localhost"));
    jwks.reset_count();
    assert_eq!(jwks.count(), 0);

    // stop() refuses new connections and closes kept-alive ones.
    jwks.set_mode(JwksMode::Ok(body.clone()));
    jwks.stop();
    assert!(try_send(port, &Request::get("/")).is_err());
    conn.write_all(&keep_alive).ok();
    assert!(read_response(&mut reader, false).is_err());
    jwks.restart();
    assert_eq!(jwks.port(), port);
    assert_eq!(get("/again").body_str(), body);
    assert_eq!(jwks.count(), 1);
}

fn verify(alg: Alg, jwk: &Value, token: &str) -> Result<JWTClaims<Value>, jwt_simple::Error> {
    let part = |name: &str| b64url_decode(jwk[name].as_str().unwrap());
    let ec_point = || [vec![4], part("x"), part("y")].concat();
    match alg {
        Alg::RS256 => {
            RS256PublicKey::from_components(&part("n"), &part("e"))?.verify_token(token, None)
        }
        Alg::RS384 => {
            RS384PublicKey::from_components(&part("n"), &part("e"))?.verify_token(token, None)
        }
        Alg::RS512 => {
            RS512PublicKey::from_components(&part("n"), &part("e"))?.verify_token(token, None)
        }
        Alg::PS256 => {
            PS256PublicKey::from_components(&part("n"), &part("e"))?.verify_token(token, None)
        }
        Alg::PS384 => {
            PS384PublicKey::from_components(&part("n"), &part("e"))?.verify_token(token, None)
        }
        Alg::PS512 => {
            PS512PublicKey::from_components(&part("n"), &part("e"))?.verify_token(token, None)
        }
        Alg::ES256 => ES256PublicKey::from_bytes(&ec_point())?.verify_token(token, None),
        Alg::ES384 => ES384PublicKey::from_bytes(&ec_point())?.verify_token(token, None),
        Alg::EdDSA => Ed25519PublicKey::from_bytes(&part("x"))?.verify_token(token, None),
        Alg::HS256 => HS256Key::from_bytes(&part("k")).verify_token(token, None),
        Alg::HS384 => HS384Key::from_bytes(&part("k")).verify_token(token, None),
        Alg::HS512 => HS512Key::from_bytes(&part("k")).verify_token(token, None),
    }
}

#[test]
fn tokens_verify_with_jwt_simple() {
    let rsa = TestKey::rsa("rsa-1", 2048);
    let (p256, p384) = (TestKey::ec_p256("p256-1"), TestKey::ec_p384("p384-1"));
    let ed = TestKey::ed25519("ed-1");
    let hs = TestKey::hmac("hs-1", b"a 32-byte secret for HMAC tests!");
    let issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test";
    let claims = cognito_access_claims(issuer, "client-1", "api/read api/write", now());
    assert!(claims.get("aud").is_none());

    for alg in Alg::ALL {
        let key = match alg {
            Alg::ES256 => &p256,
            Alg::ES384 => &p384,
            Alg::EdDSA => &ed,
            Alg::HS256 | Alg::HS384 | Alg::HS512 => &hs,
            _ => &rsa,
        };
        let jwk = key.jwk_with_alg(alg);
        assert_eq!(
            (jwk["kid"].as_str(), jwk["use"].as_str()),
            (Some(key.kid.as_str()), Some("sig"))
        );
        assert_eq!(jwks(&[key.jwk_with_alg(alg)])["keys"][0], jwk);

        let token = key.token(alg, claims.clone());
        let header = b64url_decode(token.split('.').next().unwrap());
        let expected = format!(r#"{{"kid":"{}","alg":"{}"}}"#, key.kid, alg.name());
        assert_eq!(String::from_utf8(header).unwrap(), expected);
        let verified = verify(alg, &jwk, &token).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(verified.issuer.as_deref(), Some(issuer));
        assert_eq!(verified.custom["token_use"], "access");

        let tampered = key.mint(alg, json!({"alg": alg.name()}), json!({"sub": "x"}));
        let forged = format!(
            "{}.{}",
            &token[..token.rfind('.').unwrap()],
            tampered.rsplit('.').next().unwrap()
        );
        assert!(
            verify(alg, &jwk, &forged).is_err(),
            "{alg:?} accepted a foreign signature"
        );
    }

    // mint_raw signs arbitrary bytes.
    let token = hs.mint_raw(Alg::HS256, br#"{"alg":"HS256","alg":"none"}"#, b"[1,2]");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(b64url_decode(parts[1]), b"[1,2]");
    assert_eq!(
        b64url_decode(parts[2]),
        hs.sign(Alg::HS256, format!("{}.{}", parts[0], parts[1]).as_bytes())
    );

    // The high-S twin differs, keeps its size, and still verifies mathematically.
    use p256::ecdsa::signature::Verifier;
    let KeyMaterial::P256(signing) = &p256.material else {
        unreachable!()
    };
    let sig = p256.sign(Alg::ES256, b"msg");
    let high = es_high_s(&sig, Alg::ES256);
    assert_ne!(high, sig);
    assert_eq!(high.len(), 64);
    let high_sig = p256::ecdsa::Signature::from_slice(&high).unwrap();
    signing
        .verifying_key()
        .verify(b"msg", &high_sig)
        .expect("high-S twin verifies");
    let KeyMaterial::P384(signing) = &p384.material else {
        unreachable!()
    };
    let sig = p384.sign(Alg::ES384, b"msg");
    let high = es_high_s(&sig, Alg::ES384);
    assert!(high != sig && high.len() == 96);
    let high_sig = p384::ecdsa::Signature::from_slice(&high).unwrap();
    signing
        .verifying_key()
        .verify(b"msg", &high_sig)
        .expect("high-S twin verifies");
}

#[test]
fn raw_bootstraps_name_their_listeners_and_the_log_is_flushed_on_demand() {
    let echo = EchoServer::start();
    let mut boot: Value = serde_json::from_str(
        &EnvoyConfig::without_filter()
            .upstream(echo.port())
            .bootstrap(),
    )
    .unwrap();
    let mut other = boot["static_resources"]["listeners"][0].clone();
    other["name"] = json!("other");
    boot["static_resources"]["listeners"]
        .as_array_mut()
        .unwrap()
        .push(other);
    let envoy = EnvoyConfig::raw(boot.to_string())
        .log_level("warning")
        .start();
    assert_eq!(envoy.listeners().len(), 2, "{:?}", envoy.listeners());
    assert_ne!(envoy.port(), envoy.listener_port("other"));
    assert_eq!(
        send(envoy.listener_port("other"), &Request::get("/")).status,
        200
    );
    envoy.expect_stat("cluster.upstream.upstream_rq_200", 1);
    // The admin logger is quieter than info here: flush_log raises it for
    // its line, then puts it back.
    envoy.flush_log();
    assert!(envoy.log().contains("change log level: name='admin'"));
    let listing = envoy.admin("POST", "/logging").body_str();
    assert!(listing.contains("admin: warning"), "{listing}");
    envoy.assert_no_wasm_panic();
}
