//! The core filter in a real Envoy: every case of the core issue, then the
//! filter still serves valid requests and never panicked.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use support::cases::{self, Keys};
use support::{EchoServer, EnvoyConfig, Request, refusal, send};

#[test]
fn core_policy_cases_in_envoy() {
    let keys = Keys::generate();
    let upstream = EchoServer::start();
    let envoy = EnvoyConfig::new(cases::config(&keys))
        .upstream(upstream.port())
        .start();

    let mut failures = Vec::new();
    let all = cases::core_cases(&keys);
    for case in &all {
        let resp = send(envoy.port(), &case.request);
        let upstream_view = (resp.status == 200).then(|| resp.upstream());
        let got = |name: &str| upstream_view.as_ref().and_then(|u| u.header(name));
        if let Some(why) = cases::mismatch(case, resp.status, resp.header("www-authenticate"), &got)
        {
            failures.push(format!("{}: {why}; body {}", case.name, resp.body_str()));
        }
        if resp.status != 200 {
            assert_eq!(
                resp.header("content-type"),
                Some("application/json"),
                "{}",
                case.name
            );
            let body = resp.json();
            assert!(
                body["error"].is_string() && body["error_description"].is_string(),
                "{}: {body}",
                case.name
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );

    // After the hostile cases the filter still serves valid requests...
    let token = keys
        .rsa
        .token(support::Alg::RS256, cases::claims("order/post.order"));
    let resp = send(envoy.port(), &Request::post("/api/v1/order").bearer(&token));
    assert_eq!(resp.status, 200);
    // ...and the VM never panicked or trapped.
    envoy.assert_no_wasm_panic();
}

#[test]
fn a_bad_configuration_is_refused_naming_the_field() {
    let keys = Keys::generate();
    let mut config = cases::config(&keys);
    config["rules"][2]["requires"]["provider"] = serde_json::json!("okta");
    let err = EnvoyConfig::new(config)
        .try_start()
        .err()
        .expect("Envoy must refuse the configuration");
    assert!(
        refusal(&err)
            .is_some_and(|r| r.starts_with("rules[2].requires.provider: unknown provider \"okta\"")),
        "the log names the field:\n{err}"
    );

    let mut config = cases::config(&keys);
    config["providers"]["cognito"]["audience"] = serde_json::json!("typo");
    let err = EnvoyConfig::new(config)
        .try_start()
        .err()
        .expect("unknown fields are refused");
    assert!(
        err.contains("providers.cognito.audience: unknown field"),
        "{err}"
    );

    let err = EnvoyConfig::with_raw_plugin_config("{\"providers\": ")
        .try_start()
        .err()
        .expect("bad JSON is refused");
    assert!(err.contains("configuration refused"), "{err}");
}
