//! The mesh examples in `examples/`, run in a real Envoy exactly as shipped
//! but for addresses (listener and admin on 127.0.0.1, the Cognito cluster
//! and the services pointed at servers of the test, plain HTTP), the wasm
//! path and the access log file:
//!
//! - `per-client-rate-limit.yaml`: Envoy's native `local_ratelimit` keyed
//!   on the client id the filter verified (client A throttled, client B
//!   not, a forged id changes nothing), and an access log carrying the
//!   filter's decision, rule, reason and client id from filter state, for
//!   allowed and denied requests;
//! - `claim-routing.yaml`: the route chosen by a verified claim, route-name
//!   rules decided on the route the request is forwarded on.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::cases::ISSUER;
use support::{
    Alg, EchoServer, Envoy, EnvoyConfig, JwksServer, Request, TestKey, cognito_access_claims,
    eventually, jwks, now, send,
};

fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn loopback(socket_address: &mut Value, port: u16) {
    *socket_address = json!({"address": "127.0.0.1", "port_value": port});
}

/// The example with addresses, the wasm path and log files changed, and
/// nothing else. `services` maps cluster names to local ports.
fn localised(mut boot: Value, services: &[(&str, u16)], dir: &Path) -> Value {
    loopback(&mut boot["admin"]["address"]["socket_address"], 0);
    let listener = &mut boot["static_resources"]["listeners"][0];
    loopback(&mut listener["address"]["socket_address"], 0);
    let hcm = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
    let logs = hcm.get_mut("access_log").and_then(Value::as_array_mut);
    for log in logs.into_iter().flatten() {
        log["typed_config"]["path"] = json!(dir.join("access.log").to_str().unwrap());
    }
    // (Indexing a missing key of a mutable Value would insert it: look
    // before touching.)
    for filter in hcm["http_filters"].as_array_mut().unwrap() {
        if filter["name"] == "envoy.filters.http.wasm" {
            filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] =
                json!(support::wasm_path().to_str().unwrap());
        }
    }
    for cluster in boot["static_resources"]["clusters"].as_array_mut().unwrap() {
        let name = cluster["name"].as_str().unwrap().to_owned();
        let port = services
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no local server for cluster {name}"))
            .1;
        let c = cluster.as_object_mut().unwrap();
        c.remove("transport_socket");
        c.remove("dns_lookup_family");
        c.insert("type".into(), json!("STATIC"));
        loopback(
            &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"],
            port,
        );
    }
    boot
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("jwt-policy-examples-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn token(key: &TestKey, client: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut claims = cognito_access_claims(ISSUER, client, scope, now());
    for (name, value) in extra {
        claims[*name] = json!(value);
    }
    key.token(Alg::RS256, claims)
}

/// The first request waits for the JWKS fetch; later ones are decided at
/// once.
fn warm(envoy: &Envoy, req: &Request) {
    eventually("the first JWKS fetch", Duration::from_secs(10), || {
        envoy.stat("wasmcustom.jwt_policy.jwks.cognito.fetch_succeeded") >= 1
    });
    let _ = send(envoy.port(), req);
}

#[test]
fn per_client_rate_limits_key_on_the_verified_client_and_the_access_log_names_it() {
    let key = TestKey::rsa("pool-key", 2048);
    let idp = JwksServer::start(jwks(&[key.jwk()]).to_string());
    let orders = EchoServer::start();
    let dir = temp_dir("rate");
    let boot = localised(
        example("per-client-rate-limit.yaml"),
        &[("cognito_idp", idp.port()), ("upstream", orders.port())],
        &dir,
    );
    let envoy = EnvoyConfig::raw(boot.to_string()).start();
    let bronze = token(&key, "bronze-app", "order/get.order", &[]);
    let gold = token(&key, "gold-app", "order/get.order", &[]);
    let get = |token: &str| Request::get("/api/v1/order").bearer(token);
    warm(&envoy, &Request::get("/healthz"));

    // Client A (bronze): 3 a minute, then 429 from Envoy's limiter.
    for i in 0..3 {
        assert_eq!(send(envoy.port(), &get(&bronze)).status, 200, "bronze #{i}");
    }
    let limited = send(envoy.port(), &get(&bronze));
    assert_eq!(limited.status, 429, "{}", limited.body_str());
    assert_eq!(limited.header("x-rate-limited-by"), Some("per-client"));
    // Client B (gold) is not throttled meanwhile.
    for i in 0..10 {
        let r = send(envoy.port(), &get(&gold));
        assert_eq!(r.status, 200, "gold #{i}");
        assert_eq!(
            r.upstream().header("x-client-id").as_deref(),
            Some("gold-app")
        );
    }
    // The limit keys on the id the filter verified: A claiming to be B in
    // a header of its own is still A (and its copy never reaches B's
    // bucket or the upstream).
    let forged = get(&bronze).header("X-Client-Id", "gold-app");
    assert_eq!(send(envoy.port(), &forged).status, 429);
    // Without a token, a forged id cannot spend anyone's tokens either.
    let anonymous = Request::get("/healthz").header("x-client-id", "bronze-app");
    let r = send(envoy.port(), &anonymous);
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream().header("x-client-id"), None);
    // Denials: no token (401), a token without the scope (403).
    assert_eq!(
        send(envoy.port(), &Request::get("/api/v1/order")).status,
        401
    );
    let unscoped = token(&key, "gold-app", "order/post.order", &[]);
    assert_eq!(send(envoy.port(), &get(&unscoped)).status, 403);
    envoy.expect_stat("per_client.http_local_rate_limit.rate_limited", 2);

    // The access log: decision, reason, rule, provider and client for
    // every request, from filter state (no request header is trusted).
    let want = [
        "GET /api/v1/order 200 decision=allow reason=- rule=read_orders provider=cognito client=bronze-app",
        "GET /api/v1/order 429 decision=allow reason=- rule=read_orders provider=cognito client=bronze-app",
        "GET /api/v1/order 200 decision=allow reason=- rule=read_orders provider=cognito client=gold-app",
        "GET /healthz 200 decision=allow reason=- rule=health provider=- client=-",
        "GET /api/v1/order 401 decision=deny reason=missing rule=read_orders provider=cognito client=-",
        "GET /api/v1/order 403 decision=deny reason=scope rule=read_orders provider=cognito client=gold-app",
    ];
    let log = || std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
    eventually("every access log line", Duration::from_secs(10), || {
        want.iter().all(|w| log().lines().any(|l| l == *w))
    });
    // Exactly one line per request, none with a token in it.
    let lines = log();
    assert_eq!(
        lines.lines().count(),
        1 + 3 + 1 + 10 + 1 + 1 + 1 + 1,
        "{lines}"
    );
    assert!(!lines.contains(&bronze[..40]), "{lines}");
    envoy.assert_no_wasm_panic();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn claim_routing_sends_each_client_where_its_verified_claim_says() {
    let key = TestKey::rsa("pool-key", 2048);
    let idp = JwksServer::start(jwks(&[key.jwk()]).to_string());
    let standard_pool = EchoServer::start();
    let priority_pool = EchoServer::start();
    let dir = temp_dir("routing");
    let boot = localised(
        example("claim-routing.yaml"),
        &[
            ("cognito_idp", idp.port()),
            ("orders", standard_pool.port()),
            ("orders_priority", priority_pool.port()),
        ],
        &dir,
    );
    let envoy = EnvoyConfig::raw(boot.to_string()).start();
    let client = "14aq5ll5b1it6f62uefem6aqhn";
    let gold = token(&key, client, "order/get.order", &[("sla_tier", "gold")]);
    let standard = token(&key, client, "order/get.order", &[("sla_tier", "standard")]);
    let get = |token: &str| Request::get("/api/v1/order/42").bearer(token);
    warm(&envoy, &Request::get("/api/v1/order"));

    // Who served a request, and the tier header it got.
    let served = |req: &Request| -> (u16, &'static str, Option<String>) {
        let (before_std, before_pri) = (standard_pool.count(), priority_pool.count());
        let r = send(envoy.port(), req);
        let pool = match (
            standard_pool.count() - before_std,
            priority_pool.count() - before_pri,
        ) {
            (0, 0) => "none",
            (1, 0) => "orders",
            (0, 1) => "orders_priority",
            _ => "both",
        };
        let tier = (r.status == 200)
            .then(|| r.upstream().header("x-sla-tier"))
            .flatten();
        (r.status, pool, tier)
    };

    // Gold arrives on `orders`, is routed to `orders_priority` by the
    // header the filter set, and the second pass decides that route's rule.
    let rerouted = envoy.stat("wasmcustom.jwt_policy.route_check.rerouted");
    assert_eq!(
        served(&get(&gold)),
        (200, "orders_priority", Some("gold".into()))
    );
    eventually("the reroute counted", Duration::from_secs(10), || {
        envoy.stat("wasmcustom.jwt_policy.route_check.rerouted") == rerouted + 1
    });
    assert_eq!(
        served(&get(&standard)),
        (200, "orders", Some("standard".into()))
    );
    // A client's own tier header is never what routes it.
    assert_eq!(
        served(&get(&gold).header("x-sla-tier", "standard")),
        (200, "orders_priority", Some("gold".into()))
    );
    // Asking for the gold route without a gold token: refused on the route
    // asked for, never forwarded to either pool.
    assert_eq!(
        served(&get(&standard).header("X-SLA-Tier", "gold")),
        (403, "none", None)
    );
    // No claim: the shared pool, without the header.
    let plain = token(&key, client, "order/get.order", &[]);
    assert_eq!(served(&get(&plain)), (200, "orders", None));
    assert_eq!(
        served(&Request::get("/api/v1/order/42")),
        (401, "none", None)
    );
    envoy.assert_no_wasm_panic();
    let _ = std::fs::remove_dir_all(&dir);
}
