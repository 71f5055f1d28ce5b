//! Running the `jwt-policy` command line from a test.

use std::ffi::OsString;
use std::io::Write;
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
