//! `make demo` works: runs scripts/demo.py (the Cognito emulator, the echo
//! upstream and Envoy with envoy.yaml, all on 127.0.0.1 free ports) and
//! checks that it exits 0 having shown every step of the walkthrough, and
//! that it left no process behind.
//!
//! Needs `make setup` (Envoy, ministack, boto3 in .venv) and `make wasm`.
//! The demo keeps its state in a directory of its own here, so a `make demo`
//! running at the same time does not interfere.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn make_demo_walks_through_the_cognito_flow() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} not found (run `make setup`)",
        python.display()
    );
    let state = std::env::temp_dir().join(format!("jwt-policy-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);

    let started = Instant::now();
    let mut child = Command::new(&python)
        .arg(root.join("scripts/demo.py"))
        .arg("run")
        .arg("--state-dir")
        .arg(&state)
        .arg("--envoy")
        .arg(support::envoy_binary())
        .arg("--wasm")
        .arg(support::wasm_path())
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scripts/demo.py");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        (out, err)
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            // SIGKILL: the demo's children follow (they get SIGTERM when it dies).
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo did not finish within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = reader.join().unwrap();
    let logs = || {
        let mut text = String::new();
        for name in ["envoy.log", "ministack.log", "upstream.log"] {
            let log = std::fs::read_to_string(state.join(name)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            text.push_str(&format!("\n--- {name} (tail) ---\n"));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    };
    assert!(
        status.success(),
        "the demo failed ({status}):\n{out}\n--- stderr ---\n{err}{}",
        logs()
    );

    // The walkthrough's steps, as printed.
    for line in [
        "$ aws cognito-idp create-user-pool --pool-name jwt-policy-demo",
        "$ aws cognito-idp create-resource-server",
        "--allowed-o-auth-flows client_credentials",
        "$ aws cognito-idp create-user-pool-domain",
        "__DEMO_USER_POOL_ID__ -> us-east-1_",
        "cluster cognito_jwks: ministack:4566 -> 127.0.0.1:",
        "[ok] POST /oauth2/token -> 200",
        "[ok] a token for order/get.order is refused (400",
        "\"token_use\": \"access\"",
        "[ok] scope = order/post.order",
        "[ok] POST /api/v1/order -> 200 (expected 200 from the upstream)",
        "[ok] x-client-id = the token's client_id",
        "[ok] the token did not reach the upstream",
        "[ok] GET /api/v1/order -> 403 (expected 403)",
        "error=\"insufficient_scope\"",
        "[ok] no token -> 401 (expected 401)",
        "[ok] tampered token -> 401 invalid_token (expected 401)",
        "wasmcustom.jwt_policy.jwks.cognito.fetch_succeeded: 1",
        "wasmcustom.jwt_policy.provider.cognito.rule.get_order.denied.scope: 1",
        "jwt_policy_rule_allowed{jwt_provider=\"cognito\",jwt_rule=\"post_order\"} 1",
        "JWKS for provider cognito fetched from http://ministack:4566/us-east-1_",
        "Demo complete: every step behaved as described.",
    ] {
        assert!(
            out.contains(line),
            "the demo's output lacks {line:?}:\n{out}"
        );
    }
    assert!(!out.contains("DEMO FAILED"), "{out}");

    // Everything it started is gone: each of its processes has the state
    // directory in its arguments or environment.
    let state_str = state.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let leftovers = processes_mentioning(state_str);
        if leftovers.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo left processes running: {leftovers:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// Command lines of the processes (from /proc) whose arguments or
/// environment contain `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let entries = std::fs::read_dir("/proc").expect("/proc (the check needs Linux)");
    let read = |dir: &Path, file: &str| {
        std::fs::read(dir.join(file))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default()
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let (cmdline, environ) = (read(&e.path(), "cmdline"), read(&e.path(), "environ"));
            (cmdline.contains(needle) || environ.contains(needle)).then_some(cmdline)
        })
        .collect()
}
