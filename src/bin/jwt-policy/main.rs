//! `jwt-policy`: lint plugin configurations, explain any request's decision
//! offline, decode tokens, print the configuration's JSON Schema.
//!
//! Native-only glue over the library: every decision comes from
//! [`jwt_policy::policy`], [`jwt_policy::engine`] and [`jwt_policy::plan`],
//! the code the filter runs. On wasm32 (where `cargo build --target
//! wasm32-wasip1` also builds binaries) this is an empty program.
//!
//! Exit status: 0 all good (config valid, request forwarded, token decoded);
//! 1 the answer is "no" (problems found, request denied, not a token);
//! 2 usage error or unusable input (bad arguments, unreadable file, invalid
//! configuration given to `explain`); 3 `explain` cannot decide offline (keys
//! fetched at run time and not given with `--jwks`).

// The deny list is the workspace's (`[workspace.lints]` in Cargo.toml);
// unit tests panic by design.
#![cfg_attr(test, allow(clippy::restriction))]

#[cfg(not(target_arch = "wasm32"))]
mod check;
#[cfg(not(target_arch = "wasm32"))]
mod decode;
#[cfg(not(target_arch = "wasm32"))]
mod explain;
#[cfg(not(target_arch = "wasm32"))]
mod import;
#[cfg(not(target_arch = "wasm32"))]
mod schema;
#[cfg(not(target_arch = "wasm32"))]
mod yaml;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::run()
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::io::{Read, Write};
    use std::path::Path;
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};

    use crate::{check, decode, explain, import, schema};

    /// Exit statuses; see the crate documentation.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Status {
        /// Valid, forwarded, decoded.
        Ok,
        /// Problems found, request denied, not a token.
        No,
        /// Bad arguments or unusable input.
        Usage,
        /// `explain` cannot decide without the provider's keys.
        Undetermined,
    }

    impl From<Status> for ExitCode {
        fn from(s: Status) -> ExitCode {
            ExitCode::from(match s {
                Status::Ok => 0,
                Status::No => 1,
                Status::Usage => 2,
                Status::Undetermined => 3,
            })
        }
    }

    /// An error that stops a command: printed to stderr, exit status 2.
    #[derive(Debug)]
    pub struct Failure(pub String);

    impl<T: Into<String>> From<T> for Failure {
        fn from(s: T) -> Failure {
            Failure(s.into())
        }
    }

    #[derive(Parser)]
    #[command(
        name = "jwt-policy",
        version,
        about = "Check jwt-policy plugin configurations and explain the filter's decisions offline",
        long_about = "Check jwt-policy plugin configurations and explain the filter's decisions \
            offline, with the same code the proxy-wasm filter runs.",
        after_help = "Exit status: 0 ok (valid / forwarded / decoded), 1 problems found / request \
            denied / not a token, 2 usage error or unusable input, 3 explain cannot decide \
            without the provider's keys."
    )]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        Check(check::Args),
        Explain(explain::Args),
        Decode(decode::Args),
        Schema(schema::Args),
        Import(import::Args),
    }

    pub fn run() -> ExitCode {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => {
                // Help and version go to stdout with status 0; usage errors
                // to stderr with status 2.
                let _ = e.print();
                return if e.use_stderr() {
                    Status::Usage.into()
                } else {
                    Status::Ok.into()
                };
            }
        };
        let mut out = std::io::stdout().lock();
        let result = match cli.command {
            Command::Check(args) => check::run(&args, &mut out),
            Command::Explain(args) => explain::run(&args, &mut out),
            Command::Decode(args) => decode::run(&args, &mut out),
            Command::Schema(args) => schema::run(&args, &mut out),
            Command::Import(args) => import::run(&args, &mut out),
        };
        let _ = out.flush();
        match result {
            Ok(status) => status.into(),
            Err(Failure(message)) => {
                eprintln!("jwt-policy: {message}");
                Status::Usage.into()
            }
        }
    }

    /// The bytes of `arg`: a file, or standard input for `-`.
    pub fn read_input(arg: &Path) -> Result<Vec<u8>, Failure> {
        if arg.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(bytes)
        } else {
            std::fs::read(arg).map_err(|e| Failure(format!("cannot read {}: {e}", arg.display())))
        }
    }

    /// A token given as an argument, or read from standard input for `-`;
    /// surrounding whitespace and a `Bearer ` prefix are dropped.
    pub fn read_token(arg: &str) -> Result<String, Failure> {
        let text = if arg == "-" {
            let bytes = read_input(Path::new("-"))?;
            String::from_utf8(bytes).map_err(|_| "the token on standard input is not UTF-8")?
        } else {
            arg.to_owned()
        };
        let text = text.trim();
        let token = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => text.get(7..).unwrap_or(""),
            _ => text,
        };
        let token = token.trim();
        if token.is_empty() {
            return Err("the token is empty".into());
        }
        Ok(token.to_owned())
    }

    /// Writes to the command's output; a closed pipe (`| head`) is not an
    /// error worth reporting.
    pub fn emit(out: &mut dyn Write, text: &str) {
        let _ = out.write_all(text.as_bytes());
    }

    /// The current time in seconds since the Unix epoch.
    pub fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
