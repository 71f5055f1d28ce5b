//! `jwt-policy explain` answers what the filter answers: every case of the
//! core integration suite goes through a real Envoy with the filter and
//! through `jwt-policy explain --json` with the same configuration, method,
//! request target, route and header bytes. Status, `WWW-Authenticate` and
//! the claim headers the upstream gets must be the same.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use support::cli::{explain_header_args, explain_report, explain_request_args, explained_status};

use support::cases::{self, Keys};
use support::mesh_cases::{self, MeshKeys};
use support::{EnvoyConfig, send};

/// What one side decided.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    /// 200 for a forwarded request (the echo upstream's answer).
    status: u16,
    www_authenticate: Option<String>,
    /// The headers the case cares about, as the upstream saw them.
    upstream: Vec<(String, Option<String>)>,
}

fn explain(config: &std::path::Path, case: &cases::Case) -> Result<Answer, String> {
    let mut args = explain_request_args(config, &case.request.method, &case.request.path);
    args.extend(["--route".into(), case.route.into()]);
    args.extend(explain_header_args(&case.request.headers, None));
    let report = explain_report(&args)?;
    let status = explained_status(&report);
    let upstream_header = |name: &str| {
        report["upstream"]["headers"]
            .as_array()?
            .iter()
            .find(|pair| pair[0] == name)
            .and_then(|pair| pair[1].as_str().map(str::to_owned))
    };
    Ok(Answer {
        status,
        www_authenticate: report["www_authenticate"].as_str().map(str::to_owned),
        upstream: if status == 200 {
            case.expect
                .upstream
                .iter()
                .map(|(name, _)| (name.to_string(), upstream_header(name)))
                .collect()
        } else {
            Vec::new()
        },
    })
}

#[test]
fn explain_answers_like_the_filter_in_envoy_for_every_core_case() {
    let keys = Keys::generate();
    agree("core", cases::config(&keys), &cases::core_cases(&keys));
}

/// Hosts, path templates, two pools on one rule, optional tokens and CORS
/// preflights (issue 12).
#[test]
fn explain_answers_like_the_filter_in_envoy_for_every_mesh_case() {
    let keys = MeshKeys::generate();
    agree("mesh", mesh_cases::config(&keys), &mesh_cases::cases(&keys));
}

fn agree(suite: &str, config: serde_json::Value, all: &[cases::Case]) {
    let (envoy, _upstream) = EnvoyConfig::new(config.clone()).start_with_echo();
    let dir = std::env::temp_dir().join(format!(
        "jwt-policy-agreement-{suite}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();

    let mut failures = Vec::new();
    for case in all {
        let resp = send(envoy.port(), &case.request);
        let view = (resp.status == 200).then(|| resp.upstream());
        let envoy_answer = Answer {
            status: resp.status,
            www_authenticate: resp.header("www-authenticate").map(str::to_owned),
            upstream: match &view {
                Some(v) => case
                    .expect
                    .upstream
                    .iter()
                    .map(|(name, _)| (name.to_string(), v.header(name)))
                    .collect(),
                None => Vec::new(),
            },
        };
        match explain(&config_path, case) {
            Ok(answer) if answer == envoy_answer => {}
            Ok(answer) => failures.push(format!(
                "{}: Envoy {envoy_answer:?}, explain {answer:?}",
                case.name
            )),
            Err(why) => failures.push(format!("{}: {why}", case.name)),
        }
    }
    envoy.assert_no_wasm_panic();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "explain disagrees with the filter on {} of {} {suite} cases:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    assert!(!all.is_empty(), "the {suite} suite has cases");
}
