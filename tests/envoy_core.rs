//! The core filter in a real Envoy: every case of the core issue, then the
//! filter still serves valid requests and never panicked.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use support::cases::{self, Keys};
use support::{EnvoyConfig, Request, refusal, send};

#[test]
fn core_policy_cases_in_envoy() {
    let keys = Keys::generate();
    let (envoy, _upstream) = EnvoyConfig::new(cases::config(&keys)).start_with_echo();

    let mut failures = Vec::new();
    let all = cases::core_cases(&keys);
    for case in &all {
        let (resp, failure) = cases::send_case(envoy.port(), case);
        failures.extend(failure);
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
    cases::assert_no_failures(&failures, all.len());

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
