//! Running the `jwt-policy` command line from a test.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one run of `jwt-policy` did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// The report lines (standard error), without the first (the file)
    /// and the last (the summary).
    pub fn lines(&self) -> Vec<&str> {
        let lines: Vec<&str> = self.stderr.lines().collect();
        lines[1..lines.len() - 1].to_vec()
    }

    pub fn summary(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    pub fn has_line(&self, line: &str) -> bool {
        self.stderr.lines().any(|l| l == line)
    }
}

/// `jwt-policy ARGS` with `stdin` on its standard input.
pub fn run_with(args: &[OsString], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwt-policy"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jwt-policy");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for jwt-policy");
    Run {
        code: out.status.code().expect("exit status"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

pub fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `jwt-policy ARGS` with nothing on its standard input.
pub fn run(args: &[&str]) -> Run {
    run_with(&os(args), b"")
}

/// `jwt-policy explain --json --config CONFIG --method M --path P`: the
/// request line of an explained request (headers: `explain_header_args`).
pub fn explain_request_args(config: &Path, method: &str, path: &[u8]) -> Vec<OsString> {
    vec![
        "explain".into(),
        "--json".into(),
        "--config".into(),
        config.into(),
        "--method".into(),
        method.into(),
        "--path".into(),
        OsString::from_vec(path.to_vec()),
    ]
}

/// The `--header` and `--host` arguments of `jwt-policy explain` for a
/// request's headers: HTTP/1.1 `Host` is Envoy's `:authority`;
/// `default_host` goes when the request sets none.
pub fn explain_header_args(
    headers: &[(Vec<u8>, Vec<u8>)],
    default_host: Option<&[u8]>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut host = default_host.map(<[u8]>::to_vec);
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"host") {
            host = Some(value.clone());
            continue;
        }
        let mut header = name.clone();
        header.extend_from_slice(b": ");
        header.extend_from_slice(value);
        args.push("--header".into());
        args.push(OsString::from_vec(header));
    }
    if let Some(host) = host {
        args.push("--host".into());
        args.push(OsString::from_vec(host));
    }
    args
}

/// Runs `jwt-policy ARGS` (an `explain --json`) and returns its report,
/// once it is a decision (`forward` or `respond` with a status) whose exit
/// status fits it (0, 1).
pub fn explain_report(args: &[OsString]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_jwt-policy"))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run jwt-policy: {e}"))?;
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "explain printed no JSON ({e}), exit {:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let code = match report["action"].as_str() {
        Some("forward") => 0,
        Some("respond") if report["status"].as_u64().is_some() => 1,
        _ => return Err(format!("explain gave no decision: {report}")),
    };
    if out.status.code() != Some(code) {
        return Err(format!(
            "exit status {:?} for action {}",
            out.status.code(),
            report["action"]
        ));
    }
    Ok(report)
}

/// The status of an explain report (200 for `forward`).
pub fn explained_status(report: &Value) -> u16 {
    match report["action"].as_str() {
        Some("forward") => 200,
        _ => report["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .expect("a status"),
    }
}
