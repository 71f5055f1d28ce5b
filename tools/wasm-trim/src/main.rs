//! `wasm-trim FILE...`: removes from each proxy-wasm module, in place, the
//! callback exports it does not declare (see the library). `--check`
//! writes nothing and fails when a module still exports an undeclared
//! callback.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: wasm-trim [--check] FILE...";

fn run(path: &Path, check: bool) -> Result<String, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let module = std::fs::read(path).map_err(|e| fail(&e))?;
    let trimmed = wasm_trim::trim(&module).map_err(|e| fail(&e))?;
    if check {
        return if trimmed.removed.is_empty() {
            Ok(format!(
                "{}: only declared callbacks are exported",
                path.display()
            ))
        } else {
            Err(fail(&format!(
                "exports undeclared callbacks: {}",
                trimmed.removed.join(", ")
            )))
        };
    }
    if trimmed.removed.is_empty() {
        return Ok(format!("{}: nothing to trim", path.display()));
    }
    // Written in place, not renamed over: Cargo hard-links its output to
    // the copy in `deps/` and links it again on every build, even a fresh
    // one; both names must give the trimmed module.
    std::fs::write(path, &trimmed.module).map_err(|e| fail(&e))?;
    Ok(format!(
        "{}: no longer exports {} (not implemented)",
        path.display(),
        trimmed.removed.join(", ")
    ))
}

fn main() -> ExitCode {
    let mut check = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut status = ExitCode::SUCCESS;
    for file in files {
        match run(Path::new(&file), check) {
            Ok(line) => println!("wasm-trim: {line}"),
            Err(line) => {
                eprintln!("wasm-trim: {line}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
