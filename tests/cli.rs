//! The `jwt-policy` binary as a user runs it: example configurations under
//! tests/fixtures/cli (and the repository's own envoy.yaml and Istio
//! manifests when present), tokens minted here, output and exit statuses.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use support::cases::{CLIENT, ISSUER};
use support::cli::{Run, os, run, run_with};
use support::{Alg, TestKey, cognito_access_claims, jwks};

fn fixture(name: &str) -> String {
    repo(&format!("tests/fixtures/cli/{name}"))
}

fn repo(path: &str) -> String {
    support::repo_path(path).display().to_string()
}

/// A file in a fresh temporary directory.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    support::temp_file("jwt-policy-cli", name, contents)
}

const POST: &str = "order/post.order";

// ---------------------------------------------------------------- help

#[test]
fn help_for_every_command() {
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["explain", "--help"],
        &["decode", "--help"],
        &["schema", "--help"],
        &["help", "explain"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            r.stdout.contains("Usage: jwt-policy"),
            "{args:?}:\n{}",
            r.stdout
        );
        assert!(r.stdout.contains("Exit status"), "{args:?}:\n{}", r.stdout);
    }
    let r = run(&["explain", "--help"]);
    for flag in [
        "--config", "--token", "--method", "--path", "--route", "--jwks", "--now", "--header",
        "--json",
    ] {
        assert!(r.stdout.contains(flag), "explain --help lacks {flag}");
    }
}

#[test]
fn usage_errors_exit_2_on_stderr() {
    for args in [
        &[][..],
        &["lint"],
        &["check"],
        &["explain", "--config", "x.json"],
        &["decode"],
        &[
            "explain", "--config", "x.json", "--path", "/", "--now", "soon",
        ],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.contains("Usage:") || r.stderr.contains("try '--help'"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = run(&["check", "/nonexistent/config.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("jwt-policy: cannot read /nonexistent/config.json"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- check

#[test]
fn check_accepts_valid_configs_in_every_format() {
    let r = run(&[
        "check",
        &fixture("cognito.json"),
        &fixture("envoy.yaml"),
        &fixture("wasmplugin.yaml"),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let expected = [
        format!(
            "{}: valid (1 provider, 3 rules; version ffe881aeff74)",
            fixture("cognito.json")
        ),
        format!(
            "{}, listener main, http_filters[1] (plugin other_plugin): warning: skipped: \
             wasm filter without config.configuration",
            fixture("envoy.yaml")
        ),
        format!(
            "{}, listener main, http_filters[0] (plugin jwt_policy): valid (1 provider, 2 rules; version a276592a2a9f)",
            fixture("envoy.yaml")
        ),
        format!(
            "{}, document 2, WasmPlugin orders/jwt-policy, spec.pluginConfig: valid (1 provider, 2 rules; version adf05a92e772)",
            fixture("wasmplugin.yaml")
        ),
        "3 configurations checked: 0 errors, 1 warning".to_owned(),
    ];
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), expected);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn check_names_the_field_of_each_problem() {
    let r = run(&[
        "check",
        &fixture("bad.json"),
        &fixture("bad-wasmplugin.yaml"),
        &fixture("cognito.json"),
    ]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // Every problem of a configuration, not only the first.
    assert_eq!(
        lines[..2],
        [
            format!(
                "{}: error: providers.cognito.audiences[1]: must not be empty",
                fixture("bad.json")
            ),
            format!(
                "{}: error: rules[1].requires.provider: unknown provider \"okta\"",
                fixture("bad.json")
            )
        ]
    );
    let lines = &lines[1..];
    assert!(
        lines[1].starts_with(&format!(
            "{}, WasmPlugin orders/jwt-policy, spec.pluginConfig: error: \
             providers.cognito.audience: unknown field `audience`, expected one of",
            fixture("bad-wasmplugin.yaml")
        )),
        "{}",
        lines[1]
    );
    assert!(
        !lines[1].contains("line 1"),
        "no line/column into converted YAML"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"3 configurations checked: 3 errors, 0 warnings"
    );

    // JSON syntax errors keep their line and column; `-` reads stdin.
    let r = run_with(&os(&["check", "-"]), b"{\n  \"providers\": {,\n}");
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("<stdin>: error: ") && r.stdout.contains("line 2 column"),
        "{}",
        r.stdout
    );

    // Every problem the filter refuses on is reported by field path.
    for (config, field) in [
        (
            json!({"providers": {"p": {"issuer": "i", "algorithms": ["none"]}}}),
            "providers.p.algorithms[0]",
        ),
        (
            json!({"providers": {"p": {"issuer": "i", "remote_jwks": {"cluster": "c", "uri": "ftp://x"}}}}),
            "providers.p.remote_jwks.uri",
        ),
        (
            json!({"providers": {}, "rules": [{"match": {"prefix": "api"}, "allow_anonymous": true}]}),
            "rules[0].match.prefix",
        ),
        (json!({"rules": []}), "providers"),
    ] {
        let path = temp_file("config.json", config.to_string().as_bytes());
        let r = run(&["check", path.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{config}");
        assert!(
            r.stdout.contains(&format!(": error: {field}: ")),
            "{config}: {}",
            r.stdout
        );
    }

    // A file without any plugin configuration, and one that is not YAML.
    let k8s = temp_file(
        "svc.yaml",
        b"apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
    );
    let r = run(&["check", k8s.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        format!(
            "{}: note: no jwt-policy plugin configuration in this file\n\
             error: no jwt-policy plugin configuration found\n\
             0 configurations checked: 1 error, 0 warnings\n",
            k8s.display()
        )
    );
    // Beside a file that has one, it is just another manifest.
    let r = run(&["check", k8s.to_str().unwrap(), &fixture("wasmplugin.yaml")]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let broken = temp_file("broken.yaml", b"providers: [\n");
    let r = run(&["check", broken.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("error: not valid YAML"), "{}", r.stdout);
}

#[test]
fn check_warns_about_risky_settings() {
    let r = run(&["check", &fixture("risky.yaml")]);
    assert_eq!(r.code, 0, "warnings alone pass:\n{}", r.stdout);
    let warnings: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": warning: ").map(|(_, w)| w))
        .collect();
    let fields: Vec<&str> = warnings
        .iter()
        .map(|w| w.split_once(": ").unwrap().0)
        .collect();
    assert_eq!(
        fields,
        [
            "providers.cognito.audiences",
            "providers.cognito.remote_jwks.cache_ttl_s",
            "providers.cognito.remote_jwks.max_stale_s",
            "providers.cognito.clock_skew_s",
            "providers.cognito.token_use",
            "providers.internal.algorithms",
            "unmatched",
            "mode",
            "rules[1].match",
            "rules[1].requires.scopes[0]",
            "rules[3].match.prefix",
            "rules[3].match.methods",
        ],
        "{}",
        r.stdout
    );
    for (field, says) in [
        ("providers.cognito.audiences", "any client"),
        ("providers.internal.algorithms", "HS256"),
        (
            "rules[1].match",
            "rule order_writes can never apply: rule orders",
        ),
        (
            "rules[1].requires.scopes[0]",
            "\"orders/write\" is not in providers.cognito.known_scopes",
        ),
        ("providers.cognito.token_use", "token_use: access"),
        (
            "rules[3].match.prefix",
            "\"/reports/./daily\" is matched as \"/reports/daily\"",
        ),
        (
            "rules[3].match.methods",
            "rule reports needs a token for GET but not HEAD, and anonymous rule everything_else lets HEAD through",
        ),
    ] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(field) && w.contains(says)),
            "{field}: {says}\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout
            .ends_with("1 configuration checked: 0 errors, 12 warnings\n")
    );

    let r = run(&["check", "--strict", &fixture("risky.yaml")]);
    assert_eq!(r.code, 1, "--strict fails on warnings");
    let r = run(&["check", "--quiet", &fixture("risky.yaml")]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "1 configuration checked: 0 errors, 12 warnings\n");
}

#[test]
fn check_the_repository_configs() {
    // envoy.yaml, the deploy/istio manifests and the examples: each must be
    // there (a missing one fails the test rather than shrinking it).
    let mut files = vec![repo("envoy.yaml")];
    assert!(
        Path::new(&files[0]).exists(),
        "no envoy.yaml at the repository root"
    );
    for dir in ["deploy/istio", "examples"] {
        let entries = std::fs::read_dir(repo(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut found: Vec<String> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .map(|p| p.to_str().unwrap().to_owned())
            .collect();
        assert!(!found.is_empty(), "no YAML files in {dir}");
        found.sort();
        files.extend(found);
    }
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let r = run(&args);
    assert_eq!(
        r.code, 0,
        "the shipped configurations must be valid:\n{}",
        r.stdout
    );
    assert!(!r.stdout.contains(": error: "), "{}", r.stdout);
    let valid = |f: &str| {
        r.stdout
            .lines()
            .any(|l| l.starts_with(f) && l.contains(": valid ("))
    };
    for f in &files {
        let has_config = std::fs::read_to_string(f)
            .is_ok_and(|t| t.contains("kind: WasmPlugin") || t.contains("envoy.filters.http.wasm"));
        assert_eq!(valid(f), has_config, "{f}:\n{}", r.stdout);
    }
}

// ---------------------------------------------------------------- explain

/// The cognito.json fixture takes its keys from a remote JWKS: these tests
/// give it one with --jwks.
struct Remote {
    key: TestKey,
    jwks: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let key = TestKey::rsa("k1", 2048);
        let jwks = temp_file("jwks.json", jwks(&[key.jwk()]).to_string().as_bytes());
        Remote { key, jwks }
    }

    fn token(&self, scope: &str, now: u64) -> String {
        self.key.token(
            Alg::RS256,
            cognito_access_claims(ISSUER, CLIENT, scope, now),
        )
    }

    fn explain(&self, extra: &[&str]) -> Run {
        let config = fixture("cognito.json");
        let jwks = format!("cognito={}", self.jwks.display());
        let mut args = vec!["explain", "--config", &config, "--jwks", &jwks];
        args.extend_from_slice(extra);
        run(&args)
    }
}

const NOW: u64 = 1_750_000_000;

#[test]
fn explain_allows_and_shows_the_upstream_request() {
    let remote = Remote::new();
    let token = remote.token(POST, NOW - 30);
    let now = NOW.to_string();
    let r = remote.explain(&[
        "--token",
        &token,
        "--method",
        "POST",
        "--path",
        "/api/v1/order?x=1",
        "--now",
        &now,
        "-H",
        "x-client-id: spoofed",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["decision"], "allow");
    assert_eq!(j["action"], "forward");
    assert_eq!(j["status"], Value::Null);
    assert_eq!(j["rule"]["name"], "post_order");
    assert_eq!(j["provider"]["name"], "cognito");
    let checks: Vec<(&str, bool)> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("rule", true),
            ("token", true),
            ("parse", true),
            ("alg", true),
            ("key", true),
            ("signature", true),
            ("exp", true),
            ("iss", true),
            ("aud", true),
            ("token_use", true),
            ("scopes", true),
        ]
    );
    assert_eq!(
        j["upstream"]["headers"],
        json!([["x-client-id", CLIENT], ["x-scopes", POST]]),
        "the token is not forwarded and the spoofed header is replaced"
    );
    assert_eq!(
        j["upstream"]["removed"],
        json!(["authorization"]),
        "the spoofed x-client-id is replaced, not removed"
    );
    assert_eq!(j["upstream"]["path"], "/api/v1/order?x=1");

    // The same in text.
    let r = remote.explain(&[
        "--token",
        &token,
        "--method",
        "POST",
        "--path",
        "/api/v1/order",
        "--now",
        &now,
    ]);
    assert_eq!(r.code, 0);
    for line in [
        "request   POST /api/v1/order",
        "rule      rules[1] \"post_order\": prefix /api/v1/order, methods POST; a token from cognito, any of scopes order/post.order",
        "  pass  signature   valid",
        "  pass  scopes      needs any of [\"order/post.order\"]; token has [\"order/post.order\"]",
        "decision  allow",
        "upstream  POST /api/v1/order",
        &format!("  x-client-id: {CLIENT}"),
        "  (removed: authorization)",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout
            .contains("keys: 1 key given with --jwks for https://cognito-idp"),
        "{}",
        r.stdout
    );
}

#[test]
fn explain_denials_with_status_and_challenge() {
    let remote = Remote::new();
    let now = NOW.to_string();
    let token = remote.token(POST, NOW - 30);

    // A valid token without the GET scopes: 403 naming them.
    let r = remote.explain(&[
        "--token",
        &token,
        "--path",
        "/api/v1/order/42",
        "--now",
        &now,
        "--json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["decision"], "deny");
    assert_eq!(j["reason"], "scope");
    assert_eq!(j["status"], 403);
    assert_eq!(
        j["www_authenticate"],
        "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"token lacks \
         the required scope\", scope=\"order/get.order order/admin\""
    );
    assert_eq!(
        j["checks"].as_array().unwrap().last().unwrap()["check"],
        "scopes"
    );
    assert_eq!(j["upstream"], Value::Null);

    // Expired an hour later; the text names the failing check.
    let later = (NOW + 7200).to_string();
    let r = remote.explain(&[
        "--token",
        &token,
        "--method",
        "POST",
        "--path",
        "/api/v1/order",
        "--now",
        &later,
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("  FAIL  exp         token expired"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("decision  deny (expired): token expired"));
    assert!(r.stdout.contains("response  401\n  www-authenticate: Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token expired\""), "{}", r.stdout);

    // No token at all; no keys needed to say so.
    let r = run(&[
        "explain",
        "--config",
        &fixture("cognito.json"),
        "--method",
        "POST",
        "--path",
        "/api/v1/order",
        "--json",
    ]);
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(
        (j["status"].as_u64(), j["reason"].as_str()),
        (Some(401), Some("missing"))
    );
    assert_eq!(j["www_authenticate"], "Bearer realm=\"api\"");

    // Unmatched requests are denied; anonymous ones allowed.
    let r = run(&[
        "explain",
        "--config",
        &fixture("cognito.json"),
        "--path",
        "/other",
        "--json",
    ]);
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (1, Some("unmatched"))
    );
    let r = run(&[
        "explain",
        "--config",
        &fixture("cognito.json"),
        "--path",
        "/healthz",
        "--json",
    ]);
    assert_eq!((r.code, r.json()["decision"].as_str()), (0, Some("allow")));
}

#[test]
fn explain_in_report_mode_forwards_the_denial() {
    let remote = Remote::new();
    let token = remote.token(POST, NOW);
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("cognito.json")).unwrap()).unwrap();
    config["mode"] = json!("report");
    let path = temp_file("report.json", config.to_string().as_bytes());
    let jwks = format!("--jwks={}", remote.jwks.display());
    let r = run(&[
        "explain",
        "--config",
        path.to_str().unwrap(),
        &jwks,
        "--token",
        &token,
        "--path",
        "/api/v1/order/42",
        "--now",
        &NOW.to_string(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "forwarded: {}", r.stdout);
    let j = r.json();
    assert_eq!(
        (
            j["mode"].as_str(),
            j["decision"].as_str(),
            j["action"].as_str()
        ),
        (Some("report"), Some("deny"), Some("forward"))
    );
    assert_eq!(j["status"], Value::Null);
    let headers = j["upstream"]["headers"].as_array().unwrap();
    assert!(
        headers.contains(&json!([
            "x-jwt-policy-decision",
            "deny; reason=scope; status=403"
        ])),
        "{headers:?}"
    );
}

#[test]
fn explain_without_the_remote_keys_is_undetermined() {
    let remote = Remote::new();
    let token = remote.token(POST, NOW);
    let now = NOW.to_string();
    let args = [
        "explain",
        "--config",
        &fixture("cognito.json"),
        "--token",
        &token,
        "--method",
        "POST",
        "--path",
        "/api/v1/order",
        "--now",
        &now,
    ];
    let r = run(&args);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.contains("decision  undetermined"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("   ??   key         not checked: the keys are fetched at run time"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "note      provider cognito fetches its keys from \
             https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot/.well-known/jwks.json \
             at run time"
        ) && r.stdout.contains("--jwks"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("response  503"), "no made-up 503");
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let j = run(&json_args).json();
    assert_eq!(j["decision"], "undetermined");
    assert_eq!(j["checks"][4]["check"], "key");
    assert_eq!(j["checks"][4]["passed"], Value::Null);
    assert_eq!(
        (j["status"].clone(), j["action"].clone()),
        (Value::Null, Value::Null)
    );

    // --jwks FILE without a provider name: the only remote provider.
    let r = run(&[&args[..], &["--jwks", remote.jwks.to_str().unwrap()]].concat());
    assert_eq!(r.code, 0, "{}", r.stdout);
}

/// Issue 12 through explain: bootstrap keys decide offline, `--host`
/// picks host rules, and what the filter publishes as filter state is shown.
#[test]
fn explain_with_bootstrap_keys_hosts_and_filter_state() {
    let remote = Remote::new();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("cognito.json")).unwrap()).unwrap();
    let provider = &mut config["providers"]["cognito"];
    provider["local_jwks"] = serde_json::from_slice(&std::fs::read(&remote.jwks).unwrap()).unwrap();
    provider["claims_to_filter_state"] = json!([{ "claim": "client_id", "name": "client" }]);
    config["decision_to_filter_state"] = json!(true);
    config["rules"].as_array_mut().unwrap().insert(
        0,
        json!({ "name": "internal_only", "match": { "hosts": ["*.internal.example.com"] },
                           "requires": { "all_scopes": ["ops/admin"] } }),
    );
    let path = temp_file("bootstrap.json", config.to_string().as_bytes());
    let token = remote.token(POST, NOW - 30);
    let now = NOW.to_string();
    let explain = |host: Option<&str>| {
        let mut args = vec![
            "explain",
            "--config",
            path.to_str().unwrap(),
            "--token",
            &token,
            "--method",
            "POST",
            "--path",
            "/api/v1/order",
            "--now",
            &now,
        ];
        if let Some(h) = host {
            args.extend(["--host", h]);
        }
        run(&args)
    };
    // No --jwks: the bootstrap keys check the signature, and explain says so.
    let r = explain(Some("orders.example.com"));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("request   POST /api/v1/order (host orders.example.com)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("provider cognito was checked with its bootstrap keys"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "filter state\n  wasm.jwt_policy.decision: allow\n  wasm.jwt_policy.rule: post_order\n  \
             wasm.jwt_policy.provider: cognito\n  wasm.jwt_policy.claim.client: {CLIENT}\n"
        )),
        "{}",
        r.stdout
    );
    // The host rule decides requests to its hosts.
    let r = explain(Some("billing.internal.example.com:8443"));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("rule      rules[0] \"internal_only\": hosts *.internal.example.com"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("wasm.jwt_policy.reason: scope"),
        "{}",
        r.stdout
    );
    // Without --host a host rule cannot match, and explain says so.
    let r = explain(None);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("note      rule internal_only matches by host and no --host was given"),
        "{}",
        r.stdout
    );
}

#[test]
fn explain_reads_the_token_from_stdin_and_raw_header_bytes() {
    let remote = Remote::new();
    let token = remote.token(POST, NOW);
    let jwks = format!("--jwks={}", remote.jwks.display());
    let base = [
        "explain",
        "--config",
        &fixture("cognito.json"),
        &jwks,
        "--method",
        "POST",
        "--path",
        "/api/v1/order",
        "--now",
        &NOW.to_string(),
        "--json",
    ]
    .map(str::to_owned);
    let mut args: Vec<OsString> = base.iter().map(OsString::from).collect();
    args.extend(os(&["--token", "-"]));
    let r = run_with(&args, format!("{token}\n").as_bytes());
    assert_eq!(
        (r.code, r.json()["decision"].as_str()),
        (0, Some("allow")),
        "{}",
        r.stderr
    );

    // Non-UTF-8 bytes in the Authorization header: refused as the filter does.
    let mut args: Vec<OsString> = base.iter().map(OsString::from).collect();
    args.push("--header".into());
    args.push(OsString::from_vec(
        b"Authorization: Bearer \xff\xfe\xc3(".to_vec(),
    ));
    let r = run_with(&args, b"");
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(j["status"], 401);
    assert_eq!(
        j["www_authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token is not ASCII\""
    );

    // ...and in another header, shown escaped upstream.
    let mut args: Vec<OsString> = base.iter().map(OsString::from).collect();
    args.extend(os(&["--token", &token, "--header"]));
    args.push(OsString::from_vec(b"x-odd: \xe9t\xe9".to_vec()));
    let r = run_with(&args, b"");
    assert_eq!(r.code, 0);
    let headers = r.json()["upstream"]["headers"].clone();
    assert!(
        headers
            .as_array()
            .unwrap()
            .contains(&json!(["x-odd", "\\xe9t\\xe9"])),
        "{headers}"
    );
}

#[test]
fn explain_refuses_unusable_input() {
    let r = run(&["explain", "--config", &fixture("bad.json"), "--path", "/"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(
            "the configuration is refused: providers.cognito.audiences[1]: must not be empty; \
             rules[1].requires.provider: unknown provider \"okta\" (see jwt-policy check)"
        ),
        "{}",
        r.stderr
    );
    let r = run(&[
        "explain",
        "--config",
        &fixture("cognito.json"),
        "--path",
        "/",
        "--header",
        "no colon",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--header"), "{}", r.stderr);
    let local = temp_file(
        "local.json",
        support::cases::config(&support::cases::Keys::generate())
            .to_string()
            .as_bytes(),
    );
    let r = run(&[
        "explain",
        "--config",
        local.to_str().unwrap(),
        "--path",
        "/",
        "--jwks",
        "x.json",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no provider uses remote_jwks"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "explain",
        "--config",
        &fixture("envoy.yaml"),
        "--path",
        "/",
        "--jwks",
        "/nonexistent",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read /nonexistent"),
        "{}",
        r.stderr
    );
    // A file with several plugin configurations is ambiguous.
    let two = temp_file(
        "two.yaml",
        format!(
            "{}\n---\n{}",
            std::fs::read_to_string(fixture("wasmplugin.yaml")).unwrap(),
            std::fs::read_to_string(fixture("wasmplugin.yaml")).unwrap()
        )
        .as_bytes(),
    );
    let r = run(&["explain", "--config", two.to_str().unwrap(), "--path", "/"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("holds 2 plugin configurations"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- decode

#[test]
fn decode_shows_header_claims_and_dates() {
    let key = TestKey::rsa("k1", 2048);
    let iat = 1_700_000_000;
    let token = key.token(Alg::RS256, cognito_access_claims(ISSUER, CLIENT, POST, iat));
    let r = run(&["decode", &token, "--now", &(iat + 60).to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in [
        "header",
        "  \"alg\": \"RS256\",",
        "  \"kid\": \"k1\"",
        "claims",
        "  \"auth_time\": 1700000000,  // 2023-11-14T22:13:20Z, 1m ago",
        "  \"exp\": 1700003600,  // 2023-11-14T23:13:20Z, in 59m",
        "  \"iat\": 1700000000,  // 2023-11-14T22:13:20Z, 1m ago",
        &format!("  \"iss\": \"{ISSUER}\","),
        "  \"scope\": \"order/post.order\",",
        "  256 bytes, not verified (jwt-policy explain checks it)",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("note"), "a well-formed token");

    // JSON, from stdin with a Bearer prefix, two hours after expiry.
    let r = run_with(
        &os(&[
            "decode",
            "-",
            "--json",
            "--now",
            &(iat + 3600 + 7380).to_string(),
        ]),
        format!("Bearer {token}\n").as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["header"]["kid"], "k1");
    assert_eq!(j["claims"]["client_id"], CLIENT);
    assert_eq!(
        j["times"]["exp"],
        json!({"unix": 1_700_003_600u64, "utc": "2023-11-14T23:13:20Z", "relative": "2h 3m ago"})
    );
    assert_eq!(j["signature_bytes"], 256);
    assert_eq!(j["malformed"], Value::Null);

    // A token the filter would not even parse is still shown, with why.
    let none = format!(
        "{}.{}.",
        support::b64url(r#"{"alg":"none"}"#),
        support::b64url(r#"{"sub":"x"}"#)
    );
    let r = run(&["decode", &none]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains(
            "note\n  the filter refuses this token as malformed: unsupported algorithm \"none\""
        ),
        "{}",
        r.stdout
    );

    let r = run(&["decode", "garbage"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    assert_eq!(
        r.stderr,
        "jwt-policy: not a JWT: expected header.payload.signature\n"
    );
}

// ---------------------------------------------------------------- schema

const SCHEMA: &str = "schema/jwt-policy.schema.json";

#[test]
fn schema_in_the_repository_is_up_to_date() {
    let r = run(&["schema"]);
    assert_eq!(r.code, 0);
    let generated: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        generated["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        generated["properties"]["providers"]["description"],
        "Token issuers, by a name that rules refer to.",
        "doc comments become descriptions"
    );
    let stored = std::fs::read_to_string(repo(SCHEMA)).unwrap_or_default();
    assert!(
        stored == r.stdout,
        "{SCHEMA} differs from `jwt-policy schema` (src/config.rs changed?): \
         regenerate it with `make schema` and commit it"
    );
}

#[test]
fn schema_validates_the_configurations() {
    let tool = repo(".venv/bin/check-jsonschema");
    assert!(
        Path::new(&tool).exists(),
        "{tool} not found: run `make setup`"
    );
    let validate = |instance: &str| {
        Command::new(&tool)
            .args(["--schemafile", &repo(SCHEMA), instance])
            .output()
            .expect("run check-jsonschema")
    };
    let cases = temp_file(
        "cases.json",
        support::cases::config(&support::cases::Keys::generate())
            .to_string()
            .as_bytes(),
    );
    for instance in [
        fixture("cognito.json"),
        fixture("risky.yaml"),
        fixture("bad.json"), // refused by the policy, but well-typed
        cases.to_str().unwrap().to_owned(),
    ] {
        let out = validate(&instance);
        assert!(
            out.status.success(),
            "{instance}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The WasmPlugin wrapper puts the same schema at spec.pluginConfig.
    let wrapper = |instance: &str| {
        Command::new(&tool)
            .args([
                "--schemafile",
                &repo("schema/wasmplugin.schema.json"),
                instance,
            ])
            .output()
            .expect("run check-jsonschema")
    };
    let manifest = std::fs::read_to_string(fixture("wasmplugin.yaml")).unwrap();
    let (_, plugin) = manifest.split_once("\n---\n").unwrap();
    let plugin = temp_file("wasmplugin.yaml", plugin.as_bytes());
    let out = wrapper(plugin.to_str().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = wrapper(&fixture("bad-wasmplugin.yaml"));
    assert!(!out.status.success(), "the wrapper must refuse the typo");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("$.spec.pluginConfig.providers.cognito: Additional properties are not allowed ('audience' was unexpected)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    for bad in [
        json!({"providers": {"p": {"issuer": "i", "audience": "typo"}}}),
        json!({"providers": {"p": {"issuer": "i", "clock_skew_s": -1}}}),
        json!({"providers": {"p": {}}}),
        json!({"providers": {}, "unmatched": "maybe"}),
        json!({"providers": {}, "rules": [{"match": {"prefix": "/"}, "requires": {"scopes": "a"}}]}),
    ] {
        let path = temp_file("bad.json", bad.to_string().as_bytes());
        let out = validate(path.to_str().unwrap());
        assert!(!out.status.success(), "the schema must refuse {bad}");
    }
}
